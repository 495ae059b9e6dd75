"""Identity's rules: organisations, accounts, roles, credentials, links, tokens and the audit.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now` so that one
call sees one instant. The caller is `actor` (the verified principal, or None on public calls).

Two calls must keep a change although they refuse the request (a failed login counts towards the
lockout; a reused refresh token revokes its family): they return a `Refusal` for the servicer to
raise after the commit, instead of raising.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Select, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from services.identity import keys
from services.identity.models import (
    AuditEvent,
    EmailLink,
    LinkPurpose,
    LoginThrottle,
    Membership,
    Organisation,
    OrganisationKind,
    RefreshToken,
    ServiceClient,
    SigningKey,
    User,
    UserStatus,
    outbox,
)
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.auth import AUDIENCE, ISSUER, Principal
from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Validator,
)
from services.kit.mail import enqueue_mail
from services.kit.paging import (
    Page,
    PageQuery,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Roles and organisation kinds
# --------------------------------------------------------------------------------------------

OPS_ADMIN = "ops_admin"
SUPPORT_AGENT = "support_agent"
_PROVIDER_ROLES = frozenset(
    {"business_account_manager", "program_account_manager", "editor", "read_only"}
)

ROLES_BY_KIND: dict[OrganisationKind, frozenset[str]] = {
    OrganisationKind.SERVICE_PROVIDER: _PROVIDER_ROLES,
    OrganisationKind.CLIENT_BUSINESS: _PROVIDER_ROLES,
    OrganisationKind.ASSOCIATION: frozenset({"association_admin", "member"}),
    OrganisationKind.DELIVERY_PARTNER: frozenset({"partner_manager"}),
    OrganisationKind.WORKSHOP: frozenset({"workshop_owner"}),
    OrganisationKind.ERP_CUSTOMER: frozenset({"customer_user"}),
    OrganisationKind.OPERATOR: frozenset({SUPPORT_AGENT, OPS_ADMIN}),
}
ALL_ROLES: frozenset[str] = frozenset().union(*ROLES_BY_KIND.values())

# Who administers an organisation besides ops_admin (who administers every organisation).
ADMIN_ROLES_BY_KIND: dict[OrganisationKind, frozenset[str]] = {
    OrganisationKind.SERVICE_PROVIDER: frozenset({"business_account_manager"}),
    OrganisationKind.CLIENT_BUSINESS: frozenset({"business_account_manager"}),
    OrganisationKind.ASSOCIATION: frozenset({"association_admin"}),
    OrganisationKind.DELIVERY_PARTNER: frozenset({"partner_manager"}),
    OrganisationKind.WORKSHOP: frozenset({"workshop_owner"}),
    OrganisationKind.ERP_CUSTOMER: frozenset(),
    OrganisationKind.OPERATOR: frozenset({OPS_ADMIN}),
}

# The role a validated (or admin-created, role-less) account receives.
BASE_ROLE_BY_KIND: dict[OrganisationKind, str] = {
    OrganisationKind.ASSOCIATION: "member",
    OrganisationKind.ERP_CUSTOMER: "customer_user",
    OrganisationKind.DELIVERY_PARTNER: "partner_manager",
    OrganisationKind.WORKSHOP: "workshop_owner",
    OrganisationKind.CLIENT_BUSINESS: "read_only",
    OrganisationKind.SERVICE_PROVIDER: "read_only",
}

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

BOOTSTRAP_ORGANISATION_NAME = "Guichet operations"
BOOTSTRAP_ORGANISATION_CODE = "ops"

# Keys stay published this long past their last token's expiry (clock skew between services).
JWKS_GRACE_SECONDS = 60
# Transaction-scoped advisory locks: one key creation, one bootstrap at a time (many replicas).
_SIGNING_KEY_LOCK = 0x6964_0001
_BOOTSTRAP_LOCK = 0x6964_0002
_OPS_ADMIN_LOCK = 0x6964_0003

# --------------------------------------------------------------------------------------------
# Pure policies
# --------------------------------------------------------------------------------------------

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{3,64}$")
PASSWORD_MIN, PASSWORD_MAX = 12, 128
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_POSTAL_CODE = re.compile(r"^[A-Za-z0-9 -]{2,16}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ORG_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "address_line",
    "postal_code",
    "city",
    "birth_date",
)
_PROFILE_LIMITS = {"first_name": 100, "last_name": 100, "address_line": 200, "city": 100}


def username_problems(username: str) -> list[str]:
    """ASCII letters, digits and `._-` only: no look-alike accounts, one lower-case form."""
    if not username.strip():
        return ["is required"]
    if not USERNAME_PATTERN.match(username):
        return ["must be 3 to 64 characters: letters a-z, digits, '.', '_' or '-'"]
    return []


def password_problems(password: str, username: str) -> list[str]:
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        problems.append(f"must be at most {PASSWORD_MAX} characters")
    if username.strip() and username.strip().lower() in password.lower():
        problems.append("must not contain the username")
    elif PASSWORD_MIN <= len(password) <= PASSWORD_MAX and _guessable(password, username):
        problems.append(
            "is too easy to guess (a common password, a keyboard pattern, a repeat or a "
            "sequence): a few unrelated words make a strong one"
        )
    return problems


# zxcvbn's score 3: about 10^8 guesses, "safely unguessable" against an online attacker and a
# moderate offline one. Length alone lets `password1234` and `aaaaaaaaaaaaaaaa` through; NIST
# 800-63B asks to refuse common, expected or repetitive values, and zxcvbn knows which they are.
PASSWORD_MIN_SCORE = 3


def _guessable(password: str, username: str) -> bool:
    # The username and its parts (jean.dupont: jean, dupont) count as known words.
    known = [username, *re.split(r"\W+", username)]
    return int(zxcvbn(password, user_inputs=known)["score"]) < PASSWORD_MIN_SCORE


def normalise_email(raw: str) -> str:
    """The address as it will be stored; raises ValueError with a reason to show."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def fold(text: str) -> str:
    """Search form of a name: accents stripped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def profile_missing(user: User) -> list[str]:
    """What keeps an account's information from being complete (empty when it is)."""
    missing = [name for name in PROFILE_FIELDS if getattr(user, name) in (None, "")]
    if not user.email:
        missing.append("email")
    elif not user.email_verified:
        missing.append("email_verified")
    return missing


def is_profile_complete(user: User) -> bool:
    return not profile_missing(user)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean(value: str) -> str:
    return " ".join(value.split())


def _check_name(v: Validator, field: str, value: str, limit: int = 100) -> None:
    v.require(field, value)
    v.check(len(value) <= limit, field, f"must be at most {limit} characters")
    v.check(not _CONTROL.search(value), field, "must not contain control characters")


def _check_email(v: Validator, field: str, raw: str, *, required: bool) -> str | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        email = normalise_email(raw)
    except ValueError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}")
        return None
    v.check(len(email) <= 320, field, "must be at most 320 characters")
    return email


def _parse_uuid(v: Validator, field: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field, "must be a UUID")
        return None


def _uuid_or_raise(field: str, raw: str) -> uuid.UUID:
    v = Validator()
    parsed = _parse_uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _timestamp(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


def _kind(value: str) -> OrganisationKind:
    return OrganisationKind(value)


def _taken(field: str, description: str) -> AlreadyExists:
    return AlreadyExists(f"{field}: {description}", violations=[(field, description)])


def _constraint(error: IntegrityError) -> str:
    """The violated constraint's name, from asyncpg's exception under SQLAlchemy's wrapper."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


async def _flush(session: AsyncSession, taken: dict[str, DomainError]) -> None:
    """Flushes, turning a unique violation lost to a concurrent writer into a precise error."""
    try:
        await session.flush()
    except IntegrityError as error:
        name = _constraint(error)
        for constraint, domain_error in taken.items():
            if constraint in name:
                raise domain_error from None
        raise


# --------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------


async def _fetch_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageQuery,
    list_name: str,
    key: Callable[[Any], Sequence[object]],
) -> Page[Any]:
    """Runs a keyset query ordered by the sort key; `key` gives an item's sort key."""
    items = list((await session.execute(query.limit(page.size + 1))).scalars().all())
    token = ""
    if len(items) > page.size:
        items = items[: page.size]
        token = _page_token(list_name, key(items[-1]))
    return Page(items=items, next_page_token=token)


# --------------------------------------------------------------------------------------------
# Audit and mail
# --------------------------------------------------------------------------------------------


def actor_id(actor: Principal | None) -> str | None:
    return None if actor is None else actor.subject


def audit(
    *,
    session: AsyncSession,
    now: datetime,
    event: str,
    actor: Principal | str | None,
    user_id: uuid.UUID | None,
    **detail: object,
) -> None:
    """Records one audit event; detail values are kept as text (the contract's string map)."""
    who = actor if isinstance(actor, str) or actor is None else actor.subject
    session.add(
        AuditEvent(
            id=uuid.uuid4(),
            time=now,
            event=event,
            actor_id=who,
            user_id=user_id,
            detail={key: str(value) for key, value in detail.items() if value is not None},
        )
    )


async def _mail(
    session: AsyncSession, settings: IdentitySettings, *, to: str, subject: str, body: str
) -> None:
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(uuid.uuid4()),
        to=[to],
        subject=subject,
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} heure{'s' if hours > 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def _greeting(user: User) -> str:
    return f"Bonjour {user.first_name}," if user.first_name else "Bonjour,"


# --------------------------------------------------------------------------------------------
# One-time links (verify e-mail, reset password)
# --------------------------------------------------------------------------------------------


async def _recently_sent(
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    purpose: LinkPurpose,
) -> bool:
    if settings.link_resend_cooldown_seconds <= 0:
        return False
    since = now - timedelta(seconds=settings.link_resend_cooldown_seconds)
    latest = await session.scalar(
        select(func.max(EmailLink.created_at)).where(
            EmailLink.user_id == user.id, EmailLink.purpose == purpose.value
        )
    )
    return latest is not None and latest > since


async def _issue_link(
    session: AsyncSession, *, now: datetime, user: User, purpose: LinkPurpose, ttl_seconds: int
) -> str:
    """A fresh one-time token (only its SHA-256 is stored); older live links of the purpose die."""
    assert user.email is not None
    await session.execute(
        update(EmailLink)
        .where(
            EmailLink.user_id == user.id,
            EmailLink.purpose == purpose.value,
            EmailLink.used_at.is_(None),
            EmailLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        EmailLink(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose.value,
            token_hash=_sha256(token),
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def _consume_link(
    session: AsyncSession, *, now: datetime, token: str, purpose: LinkPurpose
) -> tuple[EmailLink, User]:
    """The link and its user, locked; unknown, used, replaced and expired links say which."""
    link = (
        await session.execute(
            select(EmailLink)
            .where(EmailLink.token_hash == _sha256(token), EmailLink.purpose == purpose.value)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if link is None:
        raise NotFound("unknown link", reason="link_unknown")
    if link.used_at is not None:
        raise FailedPrecondition("this link was already used", reason="link_used")
    if link.revoked_at is not None:
        raise FailedPrecondition("this link was replaced by a newer one", reason="link_replaced")
    if link.expires_at <= now:
        raise FailedPrecondition("this link has expired", reason="link_expired")
    user = await session.get(User, link.user_id, with_for_update=True)
    if user is None:  # pragma: no cover - links are deleted with their user
        raise NotFound("unknown link", reason="link_unknown")
    link.used_at = now
    return link, user


def _check_token_field(v: Validator, field: str, token: str) -> None:
    v.require(field, token)
    v.check(len(token) <= 200, field, "is not a valid link token")


async def _send_verification(
    session: AsyncSession, settings: IdentitySettings, now: datetime, user: User
) -> None:
    token = await _issue_link(
        session,
        now=now,
        user=user,
        purpose=LinkPurpose.VERIFY_EMAIL,
        ttl_seconds=settings.verify_link_ttl_seconds,
    )
    assert user.email is not None
    link = f"{settings.public_base_url}/verify-email?token={token}"
    await _mail(
        session,
        settings,
        to=user.email,
        subject="Vérifiez votre adresse e-mail",
        body=(
            f"{_greeting(user)}\n\n"
            f"Pour confirmer votre adresse e-mail, ouvrez ce lien "
            f"(valable {_duration(settings.verify_link_ttl_seconds)}) :\n{link}\n\n"
            f"Votre identifiant : {user.username}\n\n"
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


async def _send_reset(
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    *,
    actor: Principal | None,
    welcome: bool = False,
) -> None:
    ttl = settings.welcome_link_ttl_seconds if welcome else settings.reset_link_ttl_seconds
    token = await _issue_link(
        session, now=now, user=user, purpose=LinkPurpose.PASSWORD_RESET, ttl_seconds=ttl
    )
    assert user.email is not None
    link = f"{settings.public_base_url}/reset-password?token={token}"
    if welcome:
        subject = "Votre compte Guichet est prêt"
        intro = "Un compte Guichet a été créé pour vous. Choisissez votre mot de passe ici"
    else:
        subject = "Choisissez un nouveau mot de passe"
        intro = "Pour choisir un nouveau mot de passe, ouvrez ce lien"
    await _mail(
        session,
        settings,
        to=user.email,
        subject=subject,
        body=(
            f"{_greeting(user)}\n\n"
            f"{intro} (valable {_duration(ttl)}) :\n{link}\n\n"
            f"Votre identifiant : {user.username}\n\n"
            "Ce lien ne sert qu'une fois. Si vous n'êtes pas à l'origine de cette demande, "
            "ignorez ce message : votre mot de passe actuel reste valable.\n"
        ),
    )
    audit(
        session=session,
        now=now,
        event="password_reset.sent",
        actor=actor,
        user_id=user.id,
        email=user.email,
        expires_at=(now + timedelta(seconds=ttl)).isoformat(),
        welcome="true" if welcome else None,
    )


# --------------------------------------------------------------------------------------------
# Authorisation
# --------------------------------------------------------------------------------------------


def is_ops_admin(actor: Principal | None) -> bool:
    return actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN)


def is_operator_staff(actor: Principal | None) -> bool:
    return (
        actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN, SUPPORT_AGENT)
    )


def can_administer(actor: Principal, organisation: Organisation) -> bool:
    """ops_admin administers every organisation; each kind has its own admin roles."""
    if actor.is_service:
        return False
    if is_ops_admin(actor):
        return True
    admin_roles = ADMIN_ROLES_BY_KIND[_kind(organisation.kind)]
    return actor.has_role(str(organisation.id), *admin_roles)


def _require(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def _require_user(actor: Principal | None) -> Principal:
    actor = _require(actor)
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def _not_admin(actor: Principal, organisation_id: uuid.UUID, what: str) -> DomainError:
    """Outside the organisation the answer is NOT_FOUND: no tenant learns what another holds."""
    if actor.roles_in(str(organisation_id)) or is_operator_staff(actor):
        return PermissionDenied("only an administrator of the organisation may do this")
    return NotFound(f"{what} not found")


async def _organisation_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: uuid.UUID,
    *,
    services: bool = False,
) -> Organisation:
    actor = _require(actor)
    if actor.is_service and not services:
        raise PermissionDenied("this call needs a user")
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if actor.is_service or can_administer(actor, organisation):
        return organisation
    raise _not_admin(actor, organisation_id, "organisation")


async def _user_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    user_id: uuid.UUID,
    *,
    services: bool = False,
    themself: bool = False,
    lock: bool = False,
) -> tuple[User, Organisation]:
    actor = _require(actor)
    if actor.is_service and not services:
        raise PermissionDenied("this call needs a user")
    user = await session.get(User, user_id, with_for_update=lock or None)
    if user is None:
        raise NotFound("user not found")
    organisation = await session.get(Organisation, user.organisation_id)
    assert organisation is not None
    if (
        actor.is_service
        or (themself and actor.subject == str(user.id))
        or can_administer(actor, organisation)
    ):
        return user, organisation
    raise _not_admin(actor, user.organisation_id, "user")


# --------------------------------------------------------------------------------------------
# Signing keys and tokens
# --------------------------------------------------------------------------------------------


async def _newest_key(session: AsyncSession) -> SigningKey | None:
    return (
        await session.execute(select(SigningKey).order_by(SigningKey.created_at.desc()).limit(1))
    ).scalar_one_or_none()


async def _create_key(
    session: AsyncSession, now: datetime, *, unless_newer_than: datetime | None
) -> SigningKey:
    """A new newest key, unless a concurrent caller made one meanwhile (advisory lock)."""
    await session.execute(select(func.pg_advisory_xact_lock(_SIGNING_KEY_LOCK)))
    newest = await _newest_key(session)
    if (
        newest is not None
        and unless_newer_than is not None
        and newest.created_at > unless_newer_than
    ):
        return newest
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    kid, pem = keys.new_key()
    key = SigningKey(kid=kid, private_key_pem=pem, created_at=now)
    session.add(key)
    await session.flush()
    return key


async def current_signing_key(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> SigningKey:
    """The key that signs now: the newest, replaced once older than the rotation period."""
    newest = await _newest_key(session)
    oldest_acceptable = now - timedelta(seconds=settings.signing_key_rotation_seconds)
    if newest is not None and newest.created_at > oldest_acceptable:
        return newest
    return await _create_key(session, now, unless_newer_than=oldest_acceptable)


async def rotate_signing_key(
    *, session: AsyncSession, actor: Principal | None, now: datetime
) -> str:
    if not is_ops_admin(actor):
        raise PermissionDenied("only ops_admin may rotate signing keys")
    key = await _create_key(session, now, unless_newer_than=None)
    audit(
        session=session,
        now=now,
        event="signing_key.rotated",
        actor=actor,
        user_id=None,
        kid=key.kid,
    )
    return key.kid


async def published_keys(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> list[SigningKey]:
    """Every key that may have signed a token still alive: the signing one and recent retirees."""
    horizon = now - timedelta(seconds=settings.longest_token_ttl_seconds + JWKS_GRACE_SECONDS)
    result = await session.execute(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > horizon))
        .order_by(SigningKey.created_at.desc())
    )
    return list(result.scalars().all())


async def jwks(*, session: AsyncSession, settings: IdentitySettings, now: datetime) -> str:
    return keys.jwks_json(
        [
            (key.kid, key.private_key_pem)
            for key in await published_keys(session=session, settings=settings, now=now)
        ]
    )


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True)
class Refusal:
    """A refused request whose bookkeeping must be committed before `error` is raised."""

    error: DomainError


def user_claims(user: User) -> dict[str, Any]:
    """What an access token says about a user; roles only once an admin validated the account."""
    orgs: dict[str, list[str]] = {}
    if user.status == UserStatus.ACTIVE:
        for membership in user.memberships:
            orgs.setdefault(str(membership.organisation_id), []).append(membership.role)
    return {
        "sub": str(user.id),
        "typ": "user",
        "st": user.status,
        "name": user.username,
        "orgs": {org: sorted(roles) for org, roles in orgs.items()},
    }


async def _sign(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    claims: dict[str, Any],
    ttl: int,
) -> str:
    key = await current_signing_key(session=session, settings=settings, now=now)
    issued_at = int(now.timestamp())
    payload = {
        **claims,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": str(uuid.uuid4()),
    }
    return keys.sign(payload, kid=key.kid, pem=key.private_key_pem)


async def _issue_user_tokens(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    family_id: uuid.UUID | None = None,
) -> IssuedTokens:
    access = await _sign(
        session,
        settings=settings,
        now=now,
        claims=user_claims(user),
        ttl=settings.access_token_ttl_seconds,
    )
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=_sha256(refresh),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


async def _revoke_refresh_tokens(
    session: AsyncSession, now: datetime, where: ColumnElement[bool], reason: str
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )


async def _record_login_failure(
    session: AsyncSession, settings: IdentitySettings, now: datetime, key: str
) -> None:
    """Counts one failure atomically (one upsert), so concurrent failures are all counted."""
    table = LoginThrottle.__table__
    window_over = table.c.window_started_at <= now - timedelta(
        seconds=settings.lockout_window_seconds
    )
    failures = case((window_over, 1), else_=table.c.failures + 1)
    locked_until = now + timedelta(seconds=settings.lockout_seconds)
    statement = pg_insert(LoginThrottle).values(
        username_key=key,
        failures=1,
        window_started_at=now,
        locked_until=locked_until if settings.lockout_threshold <= 1 else None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.username_key],
        set_={
            "failures": failures,
            "window_started_at": case((window_over, now), else_=table.c.window_started_at),
            "locked_until": case(
                (failures >= settings.lockout_threshold, locked_until), else_=table.c.locked_until
            ),
        },
    )
    await session.execute(statement)


INVALID_CREDENTIALS = "invalid username or password"


async def login(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    now: datetime,
    username: str,
    password: str,
    client_ip: str,
) -> IssuedTokens | Refusal:
    """Password login; unknown and known usernames cost the same and lock out the same."""
    v = Validator()
    v.require("username", username)
    v.check(len(username) <= 64, "username", "must be at most 64 characters")
    v.require("password", password)
    v.check(len(password) <= 1024, "password", "is too long")
    v.check(len(client_ip) <= 64, "client_ip", "must be at most 64 characters")
    v.raise_if_any()
    key = username.strip().lower()
    throttle = (
        await session.execute(select(LoginThrottle).where(LoginThrottle.username_key == key))
    ).scalar_one_or_none()
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        wait = math.ceil((throttle.locked_until - now).total_seconds())
        return Refusal(
            ResourceExhausted("too many failed attempts, try again later", retry_after_seconds=wait)
        )
    user = (
        await session.execute(select(User).where(func.lower(User.username) == key))
    ).scalar_one_or_none()
    ok = await passwords.verify(user.password_hash if user is not None else None, password)
    if not ok or user is None or user.password_hash is None:
        await _record_login_failure(session, settings, now, key)
        if user is not None:
            audit(
                session=session,
                now=now,
                event="login.failed",
                actor=None,
                user_id=user.id,
                client_ip=client_ip or None,
                reason="wrong_password",
            )
        return Refusal(Unauthenticated(INVALID_CREDENTIALS, reason="invalid_credentials"))
    if user.status == UserStatus.DISABLED:
        # Said only to whoever knows the password: it reveals nothing to a guesser.
        audit(
            session=session,
            now=now,
            event="login.failed",
            actor=None,
            user_id=user.id,
            client_ip=client_ip or None,
            reason="disabled",
        )
        return Refusal(PermissionDenied("this account is disabled", reason="account_disabled"))
    await session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == key))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
        user.updated_at = now
    audit(
        session=session,
        now=now,
        event="login.succeeded",
        actor=None,
        user_id=user.id,
        client_ip=client_ip or None,
    )
    return await _issue_user_tokens(session, settings=settings, now=now, user=user)


INVALID_REFRESH = "invalid refresh token"


async def refresh(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, refresh_token: str
) -> IssuedTokens | Refusal:
    """Rotation: the presented token dies and a new one of the same family is issued.

    Presenting a token that was already rotated means two parties hold the family: the whole
    family is revoked (theft detection, RFC 9700 section 4.14.2).
    """
    v = Validator()
    _check_token_field(v, "refresh_token", refresh_token)
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == _sha256(refresh_token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if token is None:
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="invalid_refresh_token"))
    if token.revoked_at is not None:
        if token.revoke_reason == "rotated":
            await _revoke_refresh_tokens(
                session, now, RefreshToken.family_id == token.family_id, "reuse"
            )
            audit(
                session=session,
                now=now,
                event="refresh_token.reused",
                actor=None,
                user_id=token.user_id,
                family_id=token.family_id,
            )
            return Refusal(
                Unauthenticated(
                    "refresh token already used; the session was revoked",
                    reason="refresh_token_reused",
                )
            )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="refresh_token_revoked"))
    if token.expires_at <= now:
        return Refusal(Unauthenticated("refresh token expired", reason="refresh_token_expired"))
    user = await session.get(User, token.user_id)
    if user is None or user.status == UserStatus.DISABLED:
        await _revoke_refresh_tokens(
            session, now, RefreshToken.family_id == token.family_id, "disabled"
        )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="account_disabled"))
    token.revoked_at = now
    token.revoke_reason = "rotated"
    return await _issue_user_tokens(
        session, settings=settings, now=now, user=user, family_id=token.family_id
    )


async def logout(*, session: AsyncSession, now: datetime, refresh_token: str) -> None:
    """Revokes the token's whole family; unknown tokens are fine (logging out twice is harmless)."""
    v = Validator()
    _check_token_field(v, "refresh_token", refresh_token)
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == _sha256(refresh_token))
        )
    ).scalar_one_or_none()
    if token is None:
        return
    await _revoke_refresh_tokens(session, now, RefreshToken.family_id == token.family_id, "logout")
    audit(session=session, now=now, event="logout", actor=None, user_id=token.user_id)


_NO_SECRET = "0" * 64


async def issue_service_token(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    client_id: str,
    client_secret: str,
) -> tuple[str, int]:
    """Client credentials for internal callers; the secret is compared in constant time."""
    v = Validator()
    v.require("client_id", client_id)
    v.check(len(client_id) <= 64, "client_id", "must be at most 64 characters")
    v.require("client_secret", client_secret)
    v.check(len(client_secret) <= 1024, "client_secret", "is too long")
    v.raise_if_any()
    client = await session.get(ServiceClient, client_id)
    expected = client.secret_sha256 if client is not None else _NO_SECRET
    matches = hmac.compare_digest(_sha256(client_secret), expected)
    if client is None or not matches:
        raise Unauthenticated("invalid client credentials", reason="invalid_client")
    ttl = settings.service_token_ttl_seconds
    claims = _service_claims(client_id)
    return await _sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl


def _service_claims(client_id: str) -> dict[str, Any]:
    return {
        "sub": f"svc:{client_id}",
        "typ": "service",
        "st": "active",
        "name": client_id,
        "orgs": {},
    }


# The client id of identity's own calls to other services (the membership fee check).
IDENTITY_CLIENT_ID = "identity"


async def own_service_token(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> tuple[str, int]:
    """Identity's own service token, signed here: the issuer needs no credentials of its own."""
    ttl = settings.service_token_ttl_seconds
    claims = _service_claims(IDENTITY_CLIENT_ID)
    return await _sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl


# --------------------------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------------------------


async def sync_service_clients(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> None:
    """The SERVICE_CLIENTS setting is the source of truth: upsert its clients, drop the others."""
    clients = settings.service_client_secrets
    for client_id, secret in clients.items():
        statement = pg_insert(ServiceClient).values(
            client_id=client_id, secret_sha256=_sha256(secret), updated_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[ServiceClient.client_id],
                set_={"secret_sha256": statement.excluded.secret_sha256, "updated_at": now},
            )
        )
    await session.execute(
        delete(ServiceClient).where(ServiceClient.client_id.not_in(list(clients) or [""]))
    )


async def bootstrap(
    *, session: AsyncSession, settings: IdentitySettings, passwords: Passwords, now: datetime
) -> None:
    """At start: service clients, a signing key, and the first operator admin when configured.

    An existing admin is left as it is (its password is not reset from the environment).
    """
    await session.execute(select(func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK)))
    await sync_service_clients(session=session, settings=settings, now=now)
    await current_signing_key(session=session, settings=settings, now=now)
    username = settings.bootstrap_admin_username
    if not username or not settings.bootstrap_admin_password:
        return
    exists = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower())
    )
    if exists is not None:
        return
    organisation = (
        await session.execute(
            select(Organisation).where(
                Organisation.kind == OrganisationKind.OPERATOR.value,
                Organisation.code == BOOTSTRAP_ORGANISATION_CODE,
            )
        )
    ).scalar_one_or_none()
    if organisation is None:
        organisation = Organisation(
            id=uuid.uuid4(),
            kind=OrganisationKind.OPERATOR.value,
            name=BOOTSTRAP_ORGANISATION_NAME,
            code=BOOTSTRAP_ORGANISATION_CODE,
            created_at=now,
        )
        session.add(organisation)
        await session.flush()
    email = (
        normalise_email(settings.bootstrap_admin_email) if settings.bootstrap_admin_email else None
    )
    user = _new_user(
        organisation=organisation,
        username=username,
        email=email,
        status=UserStatus.ACTIVE,
        first_name="",
        last_name="",
        now=now,
        roles=[OPS_ADMIN, SUPPORT_AGENT],
    )
    user.email_verified = email is not None
    user.password_hash = await passwords.hash(settings.bootstrap_admin_password)
    session.add(user)
    await session.flush()
    audit(
        session=session,
        now=now,
        event="user.created",
        actor="bootstrap",
        user_id=user.id,
        roles="ops_admin,support_agent",
    )


# --------------------------------------------------------------------------------------------
# Organisations
# --------------------------------------------------------------------------------------------


def _check_kind(v: Validator, kind: str) -> OrganisationKind | None:
    if not kind:
        v.require("kind", kind)
        return None
    try:
        return OrganisationKind(kind)
    except ValueError:
        v.check(False, "kind", "is not a known organisation kind")
        return None


async def create_organisation(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    kind: str,
    name: str,
    code: str,
) -> Organisation:
    if not is_ops_admin(_require(actor)):
        raise PermissionDenied("only ops_admin may create organisations")
    v = Validator()
    parsed_kind = _check_kind(v, kind)
    name, code = _clean(name), code.strip()
    _check_name(v, "name", name, 200)
    v.check(
        not code or bool(_ORG_CODE.match(code)),
        "code",
        "must be 1 to 32 characters: letters, digits, '_' or '-'",
    )
    v.raise_if_any()
    assert parsed_kind is not None
    taken = _taken("code", f"an organisation of kind {parsed_kind.value} already has this code")
    if code:
        clash = await session.scalar(
            select(Organisation.id).where(
                Organisation.kind == parsed_kind.value, Organisation.code == code
            )
        )
        if clash is not None:
            raise taken
    organisation = Organisation(
        id=uuid.uuid4(), kind=parsed_kind.value, name=name, code=code or None, created_at=now
    )
    session.add(organisation)
    await _flush(session, {"uq_organisations_kind_code": taken})
    audit(
        session=session,
        now=now,
        event="organisation.created",
        actor=actor,
        user_id=None,
        organisation_id=organisation.id,
        kind=parsed_kind.value,
        name=name,
    )
    return organisation


async def _home_organisation(session: AsyncSession, actor: Principal) -> uuid.UUID | None:
    if actor.is_service:
        return None
    try:
        user_id = uuid.UUID(actor.subject)
    except ValueError:
        return None
    return await session.scalar(select(User.organisation_id).where(User.id == user_id))


async def get_organisation(
    *, session: AsyncSession, actor: Principal | None, organisation_id: str
) -> Organisation:
    """Services and operator staff see every organisation; a user sees the ones they belong to."""
    actor = _require(actor)
    org_id = _uuid_or_raise("organisation_id", organisation_id)
    organisation = await session.get(Organisation, org_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if actor.is_service or is_operator_staff(actor) or actor.roles_in(str(org_id)):
        return organisation
    if await _home_organisation(session, actor) == org_id:
        return organisation
    raise NotFound("organisation not found")


async def list_organisations(
    *, session: AsyncSession, actor: Principal | None, kind: str, page_size: int, page_token: str
) -> Page[Organisation]:
    """By name; services and operator staff list all, a user lists their own organisations."""
    actor = _require(actor)
    v = Validator()
    parsed_kind = _check_kind(v, kind) if kind else None
    page = _parse_page(v, "organisations", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Organisation).order_by(Organisation.name, Organisation.id)
    if parsed_kind is not None:
        query = query.where(Organisation.kind == parsed_kind.value)
    if not (actor.is_service or is_operator_staff(actor)):
        own = {uuid.UUID(org) for org in actor.memberships}
        home = await _home_organisation(session, actor)
        if home is not None:
            own.add(home)
        query = query.where(Organisation.id.in_(own))
    query = query.where(*_after(page, [Organisation.name, Organisation.id]))
    return await _fetch_page(session, query, page, "organisations", lambda o: (o.name, o.id))


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


def _new_user(
    *,
    organisation: Organisation,
    username: str,
    email: str | None,
    status: UserStatus,
    first_name: str,
    last_name: str,
    now: datetime,
    roles: Iterable[str] = (),
) -> User:
    user_id = uuid.uuid4()
    return User(
        id=user_id,
        organisation_id=organisation.id,
        username=username,
        email=email,
        email_verified=False,
        status=status.value,
        first_name=first_name or None,
        last_name=last_name or None,
        search_first_name=fold(first_name),
        search_last_name=fold(last_name),
        created_at=now,
        updated_at=now,
        memberships=[
            Membership(user_id=user_id, organisation_id=organisation.id, role=role, created_at=now)
            for role in sorted(set(roles))
        ],
    )


def _username_taken() -> AlreadyExists:
    return _taken("username", "this username is already taken")


async def _ensure_username_free(session: AsyncSession, username: str) -> None:
    clash = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower())
    )
    if clash is not None:
        raise _username_taken()


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
    org_id = _parse_uuid(v, "organisation_id", organisation_id)
    username = username.strip()
    for problem in username_problems(username):
        v.check(False, "username", problem)
    normalised_email = _check_email(v, "email", email, required=True)
    for problem in password_problems(password, username):
        v.check(False, "password", problem)
    first_name, last_name = _clean(first_name), _clean(last_name)
    _check_name(v, "first_name", first_name)
    _check_name(v, "last_name", last_name)
    v.raise_if_any()
    assert org_id is not None
    # Hash before touching the database: no connection is held while argon2 runs.
    password_hash = await passwords.hash(password)
    organisation = await session.get(Organisation, org_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if _kind(organisation.kind) not in SELF_REGISTRATION_KINDS:
        raise FailedPrecondition(
            f"an organisation of kind {organisation.kind} does not accept self-registration",
            reason="self_registration_closed",
        )
    await _ensure_username_free(session, username)
    user = _new_user(
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
    await _flush(session, {"uq_users_username_lower": _username_taken()})
    audit(
        session=session,
        now=now,
        event="user.registered",
        actor=None,
        user_id=user.id,
        organisation_id=org_id,
    )
    await _send_verification(session, settings, now, user)
    return user


async def resend_verification(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, username: str
) -> None:
    """Mails a new link if the account exists and is unverified; the answer never says which."""
    v = Validator()
    v.require("username", username)
    v.check(len(username) <= 64, "username", "must be at most 64 characters")
    v.raise_if_any()
    user = (
        await session.execute(
            select(User).where(func.lower(User.username) == username.strip().lower())
        )
    ).scalar_one_or_none()
    if user is None or not user.email or user.email_verified or user.status == UserStatus.DISABLED:
        return
    if await _recently_sent(session, settings, now, user, LinkPurpose.VERIFY_EMAIL):
        return
    await _send_verification(session, settings, now, user)


async def verify_email(*, session: AsyncSession, now: datetime, token: str) -> User:
    v = Validator()
    _check_token_field(v, "token", token)
    v.raise_if_any()
    link, user = await _consume_link(
        session, now=now, token=token, purpose=LinkPurpose.VERIFY_EMAIL
    )
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


async def _me(session: AsyncSession, actor: Principal | None, *, lock: bool = False) -> User:
    actor = _require_user(actor)
    user = await session.get(User, uuid.UUID(actor.subject), with_for_update=lock or None)
    if user is None:
        raise Unauthenticated("this account no longer exists")
    if user.status == UserStatus.DISABLED:
        raise PermissionDenied("this account is disabled", reason="account_disabled")
    return user


async def get_me(*, session: AsyncSession, actor: Principal | None) -> User:
    return await _me(session, actor)


@dataclass(frozen=True)
class ProfileInput:
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    address_line: str = ""
    postal_code: str = ""
    city: str = ""
    birth_date: str = ""


async def complete_profile(
    *, session: AsyncSession, actor: Principal | None, now: datetime, profile: ProfileInput
) -> User:
    """Sets the whole profile (every field is required) for the signed-in user, pending or not."""
    user = await _me(session, actor, lock=True)
    v = Validator()
    values = {name: _clean(getattr(profile, name)) for name in PROFILE_FIELDS}
    for name, limit in _PROFILE_LIMITS.items():
        _check_name(v, f"profile.{name}", values[name], limit)
    phone, postal_code = values["phone"], values["postal_code"]
    v.require("profile.phone", phone)
    if phone:
        v.check(
            bool(_PHONE.match(phone)) and sum(c.isdigit() for c in phone) >= 6,
            "profile.phone",
            "is not a valid phone number",
        )
    v.require("profile.postal_code", postal_code)
    if postal_code:
        v.check(
            bool(_POSTAL_CODE.match(postal_code)),
            "profile.postal_code",
            "is not a valid postal code",
        )
    birth_date: date | None = None
    raw_date = values["birth_date"]
    v.require("profile.birth_date", raw_date)
    if raw_date:
        try:
            if not _ISO_DATE.match(raw_date):
                raise ValueError(raw_date)
            birth_date = date.fromisoformat(raw_date)
        except ValueError:
            v.check(False, "profile.birth_date", "must be a date written YYYY-MM-DD")
        else:
            v.check(birth_date <= now.date(), "profile.birth_date", "must not be in the future")
            v.check(birth_date.year >= 1900, "profile.birth_date", "must be after 1900")
    v.raise_if_any()
    user.first_name, user.last_name = values["first_name"], values["last_name"]
    user.phone, user.address_line = phone, values["address_line"]
    user.postal_code, user.city, user.birth_date = postal_code, values["city"], birth_date
    user.search_first_name, user.search_last_name = fold(user.first_name), fold(user.last_name)
    user.updated_at = now
    audit(session=session, now=now, event="profile.updated", actor=actor, user_id=user.id)
    return user


# --------------------------------------------------------------------------------------------
# Passwords
# --------------------------------------------------------------------------------------------


async def request_password_reset(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, login: str
) -> None:
    """Forgot password, by username or e-mail: mails links, answers the same in every case."""
    v = Validator()
    v.require("login", login)
    v.check(len(login) <= 320, "login", "must be at most 320 characters")
    v.raise_if_any()
    login = login.strip()
    if "@" in login:
        try:
            address = normalise_email(login)
        except ValueError:
            return
        query = select(User).where(func.lower(User.email) == address.lower()).limit(20)
    else:
        query = select(User).where(func.lower(User.username) == login.lower())
    for user in (await session.execute(query)).scalars().all():
        if not user.email or user.status == UserStatus.DISABLED:
            continue
        if await _recently_sent(session, settings, now, user, LinkPurpose.PASSWORD_RESET):
            continue
        await _send_reset(session, settings, now, user, actor=None)


async def reset_password(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    now: datetime,
    token: str,
    new_password: str,
) -> User:
    """Uses a reset link: new password, every session revoked, lockout cleared."""
    v = Validator()
    _check_token_field(v, "token", token)
    v.require("new_password", new_password)
    v.raise_if_any()
    link, user = await _consume_link(
        session, now=now, token=token, purpose=LinkPurpose.PASSWORD_RESET
    )
    if user.status == UserStatus.DISABLED:
        raise FailedPrecondition("this account is disabled", reason="account_disabled")
    for problem in password_problems(new_password, user.username):
        v.check(False, "new_password", problem)
    v.raise_if_any()
    user.password_hash = await passwords.hash(new_password)
    if user.email is not None and user.email.lower() == link.email.lower():
        user.email_verified = True  # the link reached that mailbox: its owner is proven
    user.updated_at = now
    await _revoke_refresh_tokens(session, now, RefreshToken.user_id == user.id, "password_reset")
    await session.execute(
        delete(LoginThrottle).where(LoginThrottle.username_key == user.username.lower())
    )
    audit(session=session, now=now, event="password_reset.used", actor=None, user_id=user.id)
    return user


async def send_password_reset(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    user_id: str,
) -> None:
    """The admin's "re-send password": a reset link by mail, never a password."""
    user, _ = await _user_for_admin(session, actor, _uuid_or_raise("user_id", user_id), lock=True)
    if not user.email:
        raise FailedPrecondition(
            "this account has no e-mail address; set one first", reason="email_missing"
        )
    if user.status == UserStatus.DISABLED:
        raise FailedPrecondition("this account is disabled", reason="account_disabled")
    await _send_reset(session, settings, now, user, actor=actor, welcome=user.password_hash is None)


async def recover_username(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    email: str,
    verification_reference: str,
) -> None:
    """Operator staff, after checking the person's identity, mail the usernames of an address."""
    actor = _require_user(actor)
    if not is_operator_staff(actor):
        raise PermissionDenied("only operator staff may recover a username")
    v = Validator()
    address = _check_email(v, "email", email, required=True)
    reference = _clean(verification_reference)
    _check_name(v, "verification_reference", reference, 200)
    v.raise_if_any()
    assert address is not None
    users = (
        (
            await session.execute(
                select(User)
                .where(func.lower(User.email) == address.lower())
                .order_by(User.created_at)
                .limit(20)
            )
        )
        .scalars()
        .all()
    )
    if not users:
        audit(
            session=session,
            now=now,
            event="username.recovered",
            actor=actor,
            user_id=None,
            email=address,
            verification_reference=reference,
            accounts="0",
        )
        return
    # One mail per stored address (addresses match case-insensitively, and are mailed as stored).
    by_address: dict[str, list[User]] = {}
    for user in users:
        assert user.email is not None
        by_address.setdefault(user.email, []).append(user)
    for recipient, owners in by_address.items():
        listing = "\n".join(f"  - {owner.username}" for owner in owners)
        await _mail(
            session,
            settings,
            to=recipient,
            subject="Votre identifiant Guichet",
            body=(
                "Bonjour,\n\nÀ votre demande, voici le ou les identifiants associés à cette "
                f"adresse :\n{listing}\n\n"
                "Si vous n'êtes pas à l'origine de cette demande, contactez le support.\n"
            ),
        )
    for user in users:
        audit(
            session=session,
            now=now,
            event="username.recovered",
            actor=actor,
            user_id=user.id,
            email=address,
            verification_reference=reference,
        )


# --------------------------------------------------------------------------------------------
# The admin's pages
# --------------------------------------------------------------------------------------------


def _check_role_names(v: Validator, field: str, roles: Sequence[str]) -> None:
    for index, role in enumerate(roles):
        v.check(role in ALL_ROLES, f"{field}[{index}]", f"unknown role {role!r}")


def _role_allowed(organisation: Organisation, role: str) -> str | None:
    allowed = ROLES_BY_KIND[_kind(organisation.kind)]
    if role in allowed:
        return None
    listed = ", ".join(sorted(allowed))
    return f"{role} cannot be held in a {organisation.kind} organisation (allowed: {listed})"


async def create_user(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    organisation_id: str,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    roles: Sequence[str],
) -> User:
    """An admin provisions an ACTIVE account; its owner gets a link to choose a password."""
    v = Validator()
    org_id = _parse_uuid(v, "organisation_id", organisation_id)
    username = username.strip()
    for problem in username_problems(username):
        v.check(False, "username", problem)
    normalised_email = _check_email(v, "email", email, required=False)
    first_name, last_name = _clean(first_name), _clean(last_name)
    _check_name(v, "first_name", first_name)
    _check_name(v, "last_name", last_name)
    _check_role_names(v, "roles", roles)
    v.raise_if_any()
    assert org_id is not None
    organisation = await _organisation_for_admin(session, actor, org_id)
    granted = list(roles)
    if not granted:
        base = BASE_ROLE_BY_KIND.get(_kind(organisation.kind))
        if base is None:
            raise InvalidArgument(
                [("roles", f"a {organisation.kind} account needs at least one role")]
            )
        granted = [base]
    for index, role in enumerate(roles):
        if refusal := _role_allowed(organisation, role):
            v.check(False, f"roles[{index}]", refusal)
    v.raise_if_any()
    await _ensure_username_free(session, username)
    user = _new_user(
        organisation=organisation,
        username=username,
        email=normalised_email,
        status=UserStatus.ACTIVE,
        first_name=first_name,
        last_name=last_name,
        now=now,
        roles=granted,
    )
    session.add(user)
    await _flush(session, {"uq_users_username_lower": _username_taken()})
    audit(
        session=session,
        now=now,
        event="user.created",
        actor=actor,
        user_id=user.id,
        roles=",".join(sorted(set(granted))),
    )
    if user.email:
        await _send_reset(session, settings, now, user, actor=actor, welcome=True)
    return user


async def get_user(*, session: AsyncSession, actor: Principal | None, user_id: str) -> User:
    """Admins of the user's organisation, services, and the user themself."""
    user, _ = await _user_for_admin(
        session, actor, _uuid_or_raise("user_id", user_id), services=True, themself=True
    )
    return user


async def search_users(
    *,
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: str,
    last_name: str,
    first_name: str,
    page_size: int,
    page_token: str,
) -> Page[User]:
    """Prefix search on last and first name, accents and case ignored, sorted by name."""
    v = Validator()
    org_id = _parse_uuid(v, "organisation_id", organisation_id)
    last, first = fold(last_name), fold(first_name)
    if not last and not first:
        v.check(False, "last_name", "give a last name or a first name to search for")
    v.check(len(last) <= 100, "last_name", "must be at most 100 characters")
    v.check(len(first) <= 100, "first_name", "must be at most 100 characters")
    page = _parse_page(v, "user-search", page_size, page_token, [str, str, uuid.UUID])
    v.raise_if_any()
    assert org_id is not None
    await _organisation_for_admin(session, actor, org_id)
    query = select(User).where(User.organisation_id == org_id)
    if last:
        query = query.where(User.search_last_name.startswith(last, autoescape=True))
    if first:
        query = query.where(User.search_first_name.startswith(first, autoescape=True))
    columns = [User.search_last_name, User.search_first_name, User.id]
    query = query.where(*_after(page, columns)).order_by(*columns)
    return await _fetch_page(
        session,
        query,
        page,
        "user-search",
        lambda u: (u.search_last_name, u.search_first_name, u.id),
    )


def _complete_clause() -> ColumnElement[bool]:
    return and_(
        User.email.is_not(None),
        User.email_verified.is_(True),
        *[getattr(User, name).is_not(None) for name in PROFILE_FIELDS],
        *[getattr(User, name) != "" for name in PROFILE_FIELDS if name != "birth_date"],
    )


async def list_accounts_to_validate(
    *,
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: str,
    page_size: int,
    page_token: str,
) -> Page[User]:
    """Pending accounts whose information is complete (verified e-mail included), oldest first."""
    v = Validator()
    org_id = _parse_uuid(v, "organisation_id", organisation_id)
    page = _parse_page(v, "to-validate", page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    assert org_id is not None
    await _organisation_for_admin(session, actor, org_id)
    columns = [User.created_at, User.id]
    query = (
        select(User)
        .where(
            User.organisation_id == org_id,
            User.status == UserStatus.PENDING.value,
            _complete_clause(),
        )
        .where(*_after(page, columns))
        .order_by(*columns)
    )
    return await _fetch_page(
        session, query, page, "to-validate", lambda u: (u.created_at.isoformat(), u.id)
    )


@dataclass(frozen=True)
class FeeStatus:
    paid: bool
    year: int


class FeeLedger(Protocol):
    """Where association fees are recorded (the membership service, `services.identity.fees`).

    Raises `Unavailable` when it cannot answer: the validation then fails and changes nothing.
    """

    async def prepare(self) -> None:
        """Called before the transaction opens (to get a token), so asking needs no database."""

    async def is_fee_paid(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> FeeStatus: ...


async def validate_account(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    fees: FeeLedger,
) -> User:
    """An admin accepts a complete pending account: ACTIVE, with the kind's base role if none.

    In an association the member must also have paid this year's fee (asked last, once every
    local rule passed, so a refused request costs no remote call).
    """
    user, organisation = await _user_for_admin(
        session, actor, _uuid_or_raise("user_id", user_id), lock=True
    )
    if user.status != UserStatus.PENDING:
        raise FailedPrecondition(
            f"this account is {user.status}, not pending", reason="not_pending"
        )
    if missing := profile_missing(user):
        fields = [name for name in missing if name != "email_verified"]
        parts = [f"missing {', '.join(fields)}"] if fields else []
        if "email_verified" in missing:
            parts.append("e-mail not verified")
        raise FailedPrecondition(
            "this account's information is incomplete: " + "; ".join(parts),
            reason="profile_incomplete",
        )
    fee_year = None
    if organisation.kind == OrganisationKind.ASSOCIATION:
        # The user row stays locked while membership answers (bounded by the call's deadline):
        # a concurrent validation waits for this one instead of asking twice.
        fee = await fees.is_fee_paid(organisation.id, user.id)
        if not fee.paid:
            raise FailedPrecondition(
                f"this year's membership fee ({fee.year}) is not recorded for this account: "
                "record the payment in the association's members, then validate",
                reason="fee_unpaid",
            )
        fee_year = fee.year
    user.status = UserStatus.ACTIVE.value
    user.updated_at = now
    granted = None
    if not user.memberships and (base := BASE_ROLE_BY_KIND.get(_kind(organisation.kind))):
        user.memberships.append(
            Membership(user_id=user.id, organisation_id=organisation.id, role=base, created_at=now)
        )
        granted = base
    audit(
        session=session,
        now=now,
        event="user.validated",
        actor=actor,
        user_id=user.id,
        granted_role=granted,
        fee_year=fee_year,
    )
    return user


async def set_user_email(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    email: str,
) -> User:
    """Completes a missing address; its owner proves it through the link mailed there."""
    v = Validator()
    parsed_id = _parse_uuid(v, "user_id", user_id)
    address = _check_email(v, "email", email, required=True)
    v.raise_if_any()
    assert parsed_id is not None and address is not None
    user, _ = await _user_for_admin(session, actor, parsed_id, lock=True)
    if user.email:
        raise FailedPrecondition(
            "this account already has an e-mail address", reason="email_present"
        )
    user.email, user.email_verified, user.updated_at = address, False, now
    audit(
        session=session,
        now=now,
        event="user.email_set",
        actor=actor,
        user_id=user.id,
        email=address,
    )
    if user.status == UserStatus.DISABLED:
        return user
    if user.password_hash is None:
        # No password yet: the "choose your password" link also proves the address.
        await _send_reset(session, settings, now, user, actor=actor, welcome=True)
    else:
        await _send_verification(session, settings, now, user)
    return user


async def _membership_target(
    session: AsyncSession,
    v: Validator,
    actor: Principal | None,
    user_id: str,
    organisation_id: str,
    role: str,
) -> tuple[User, Organisation]:
    parsed_user = _parse_uuid(v, "user_id", user_id)
    parsed_org = _parse_uuid(v, "organisation_id", organisation_id, required=False)
    v.require("role", role)
    if role:
        v.check(role in ALL_ROLES, "role", f"unknown role {role!r}")
    v.raise_if_any()
    assert parsed_user is not None
    user, organisation = await _user_for_admin(session, actor, parsed_user, lock=True)
    if parsed_org is not None and parsed_org != user.organisation_id:
        raise InvalidArgument(
            [("organisation_id", "roles are held in the user's own organisation")]
        )
    return user, organisation


async def grant_role(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    organisation_id: str,
    role: str,
) -> User:
    v = Validator()
    user, organisation = await _membership_target(session, v, actor, user_id, organisation_id, role)
    if problem := _role_allowed(organisation, role):
        raise InvalidArgument([("role", problem)])
    if any(m.role == role for m in user.memberships):
        return user
    user.memberships.append(
        Membership(user_id=user.id, organisation_id=organisation.id, role=role, created_at=now)
    )
    user.updated_at = now
    audit(
        session=session,
        now=now,
        event="role.granted",
        actor=actor,
        user_id=user.id,
        organisation_id=organisation.id,
        role=role,
    )
    return user


async def revoke_role(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    organisation_id: str,
    role: str,
) -> User:
    """Revoking a role not held is a no-op; the platform never loses its last ops_admin."""
    v = Validator()
    user, organisation = await _membership_target(session, v, actor, user_id, organisation_id, role)
    held = [m for m in user.memberships if m.role == role]
    if not held:
        return user
    if role == OPS_ADMIN:
        await session.execute(select(func.pg_advisory_xact_lock(_OPS_ADMIN_LOCK)))
        holders = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.role == OPS_ADMIN, User.status == UserStatus.ACTIVE.value)
        )
        if (holders or 0) <= 1:
            raise FailedPrecondition(
                "the last ops_admin cannot lose the role", reason="last_ops_admin"
            )
    for membership in held:
        user.memberships.remove(membership)
    user.updated_at = now
    audit(
        session=session,
        now=now,
        event="role.revoked",
        actor=actor,
        user_id=user.id,
        organisation_id=organisation.id,
        role=role,
    )
    return user


async def list_organisation_members(
    *,
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: str,
    roles: Sequence[str],
    page_size: int,
    page_token: str,
) -> Page[User]:
    """The organisation's accounts by username; with `roles`, only active holders of one of them."""
    v = Validator()
    org_id = _parse_uuid(v, "organisation_id", organisation_id)
    _check_role_names(v, "roles", roles)
    page = _parse_page(v, "members", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    assert org_id is not None
    await _organisation_for_admin(session, actor, org_id, services=True)
    query = select(User).where(User.organisation_id == org_id)
    if roles:
        holders = select(Membership.user_id).where(
            Membership.organisation_id == org_id, Membership.role.in_(list(roles))
        )
        query = query.where(User.status == UserStatus.ACTIVE.value, User.id.in_(holders))
    columns = [func.lower(User.username), User.id]
    query = query.where(*_after(page, columns)).order_by(*columns)
    return await _fetch_page(session, query, page, "members", lambda u: (u.username.lower(), u.id))


async def list_audit_events(
    *, session: AsyncSession, actor: Principal | None, user_id: str, page_size: int, page_token: str
) -> Page[AuditEvent]:
    """A user's audit trail, newest first, for the admins of their organisation."""
    v = Validator()
    parsed_id = _parse_uuid(v, "user_id", user_id)
    page = _parse_page(v, "audit", page_size, page_token, [_timestamp, int])
    v.raise_if_any()
    assert parsed_id is not None
    await _user_for_admin(session, actor, parsed_id)
    columns = [AuditEvent.time, AuditEvent.seq]
    query = (
        select(AuditEvent)
        .where(AuditEvent.user_id == parsed_id)
        .where(*_after(page, columns, descending=True))
        .order_by(AuditEvent.time.desc(), AuditEvent.seq.desc())
    )
    return await _fetch_page(session, query, page, "audit", lambda e: (e.time.isoformat(), e.seq))
