"""Self sign-up and e-mail verification: a PENDING account without roles, proven by a mailed link.

Which organisation kinds accept sign-up lives here; the account stays pending until an admin
validates it (`validation_queue`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.accounts import ensure_username_free, new_user, username_taken
from services.identity.domain.common import (
    audit,
    check_email,
    check_name,
    check_token_field,
    clean,
    duration_text,
    flush_unique,
    greeting,
    kind_of,
    parse_uuid,
    queue_mail,
)
from services.identity.domain.credentials import password_problem_codes, username_problems
from services.identity.domain.links import consume_link, issue_link, recently_sent
from services.identity.models import LinkPurpose, Organisation, OrganisationKind, User, UserStatus
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.errors import FailedPrecondition, NotFound, Validator

# Operators and service providers are staffed by admins (CreateUser), never by sign-up.
SELF_REGISTRATION_KINDS = frozenset(
    {
        OrganisationKind.ASSOCIATION,
        OrganisationKind.DELIVERY_PARTNER,
        OrganisationKind.WORKSHOP,
        OrganisationKind.ERP_CUSTOMER,
        OrganisationKind.CLIENT_BUSINESS,
    }
)


async def send_verification(
    session: AsyncSession, settings: IdentitySettings, now: datetime, user: User
) -> None:
    token = await issue_link(
        session,
        now=now,
        user=user,
        purpose=LinkPurpose.VERIFY_EMAIL,
        ttl_seconds=settings.verify_link_ttl_seconds,
    )
    assert user.email is not None
    link = f"{settings.public_base_url}/verify-email?token={token}"
    await queue_mail(
        session,
        settings,
        to=user.email,
        subject="Vérifiez votre adresse e-mail",
        kind="verify_email",
        username=user.username,
        body=(
            f"{greeting(user)}\n\n"
            f"Pour confirmer votre adresse e-mail, ouvrez ce lien "
            f"(valable {duration_text(settings.verify_link_ttl_seconds)}) :\n{link}\n\n"
            f"Votre identifiant : {user.username}\n\n"
            "Ensuite, connectez-vous et complétez votre profil "
            f"({settings.public_base_url}/profile) : un administrateur de votre organisation "
            "validera alors votre compte.\n\n"
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
        ),
    )
    audit(
        session=session,
        now=now,
        event="email_verification.sent",
        actor=None,
        user_id=user.id,
        email=user.email,
    )


async def registration_organisation(*, session: AsyncSession, organisation_id: str) -> Organisation:
    """The organisation an invitation link names, if it accepts sign-up: what the registration
    page shows by name, so that a person never has to type an organisation's id."""
    v = Validator()
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    v.raise_if_any()
    assert org_id is not None
    organisation = await session.get(Organisation, org_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if kind_of(organisation.kind) not in SELF_REGISTRATION_KINDS:
        raise FailedPrecondition(
            f"an organisation of kind {organisation.kind} does not accept self-registration",
            reason="self_registration_closed",
        )
    return organisation


async def register(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    now: datetime,
    organisation_id: str,
    username: str,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
) -> User:
    """Self sign-up: a PENDING account without roles, and a mail to verify the address."""
    v = Validator()
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    username = username.strip()
    for problem in username_problems(username):
        v.check(False, "username", problem, code="string_pattern_mismatch")
    normalised_email = check_email(v, "email", email, required=True)
    for problem, code in password_problem_codes(password, username):
        v.check(False, "password", problem, code=code)
    first_name, last_name = clean(first_name), clean(last_name)
    check_name(v, "first_name", first_name)
    check_name(v, "last_name", last_name)
    v.raise_if_any()
    assert org_id is not None
    # Hash before touching the database: no connection is held while argon2 runs.
    password_hash = await passwords.hash(password)
    organisation = await registration_organisation(session=session, organisation_id=str(org_id))
    await ensure_username_free(session, username)
    user = new_user(
        organisation=organisation,
        username=username,
        email=normalised_email,
        status=UserStatus.PENDING,
        first_name=first_name,
        last_name=last_name,
        now=now,
    )
    user.password_hash = password_hash
    session.add(user)
    await flush_unique(session, {"uq_users_username_lower": username_taken()})
    audit(
        session=session,
        now=now,
        event="user.registered",
        actor=None,
        user_id=user.id,
        organisation_id=org_id,
    )
    await send_verification(session, settings, now, user)
    return user


async def resend_verification(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, username: str
) -> None:
    """Mails a new link if the account exists and is unverified; the answer never says which."""
    v = Validator()
    v.require("username", username)
    v.check(
        len(username) <= 64, "username", "must be at most 64 characters", code="string_too_long"
    )
    v.raise_if_any()
    user = (
        await session.execute(
            select(User).where(func.lower(User.username) == username.strip().lower())
        )
    ).scalar_one_or_none()
    if user is None or not user.email or user.email_verified or user.status == UserStatus.DISABLED:
        return
    if await recently_sent(session, settings, now, user, LinkPurpose.VERIFY_EMAIL):
        return
    await send_verification(session, settings, now, user)


async def verify_email(*, session: AsyncSession, now: datetime, token: str) -> User:
    v = Validator()
    check_token_field(v, "token", token)
    v.raise_if_any()
    link, user = await consume_link(session, now=now, token=token, purpose=LinkPurpose.VERIFY_EMAIL)
    if user.email is None or user.email.lower() != link.email.lower():
        raise FailedPrecondition("this link was sent to a previous address", reason="link_replaced")
    user.email_verified = True
    user.updated_at = now
    audit(
        session=session,
        now=now,
        event="email.verified",
        actor=None,
        user_id=user.id,
        email=user.email,
    )
    return user
