"""An administrator's account pages: provision an account, find one by name, complete a missing
e-mail, read an account and its audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.accounts import ensure_username_free, fold, new_user, username_taken
from services.identity.domain.common import (
    audit,
    check_email,
    check_name,
    clean,
    fetch_page,
    flush_unique,
    kind_of,
    parse_timestamp,
    parse_uuid,
    uuid_or_raise,
)
from services.identity.domain.credentials import send_reset, username_problems
from services.identity.domain.registration import send_verification
from services.identity.domain.roles import (
    BASE_ROLE_BY_KIND,
    ROLE_FOR_ANOTHER_KIND,
    check_role_names,
    organisation_for_admin,
    role_refusal,
    user_for_admin,
)
from services.identity.models import AuditEvent, User, UserStatus
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page


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
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    username = username.strip()
    for problem in username_problems(username):
        v.check(False, "username", problem, code="string_pattern_mismatch")
    normalised_email = check_email(v, "email", email, required=False)
    first_name, last_name = clean(first_name), clean(last_name)
    check_name(v, "first_name", first_name)
    check_name(v, "last_name", last_name)
    check_role_names(v, "roles", roles)
    v.raise_if_any()
    assert org_id is not None
    organisation = await organisation_for_admin(session, actor, org_id)
    granted = list(roles)
    if not granted:
        base = BASE_ROLE_BY_KIND.get(kind_of(organisation.kind))
        if base is None:
            raise InvalidArgument(
                [("roles", f"a {organisation.kind} account needs at least one role")]
            )
        granted = [base]
    for index, role in enumerate(roles):
        if refusal := role_refusal(organisation, role):
            v.check(False, f"roles[{index}]", refusal, code=ROLE_FOR_ANOTHER_KIND)
    v.raise_if_any()
    await ensure_username_free(session, username)
    user = new_user(
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
    await flush_unique(session, {"uq_users_username_lower": username_taken()})
    audit(
        session=session,
        now=now,
        event="user.created",
        actor=actor,
        user_id=user.id,
        roles=",".join(sorted(set(granted))),
    )
    if user.email:
        await send_reset(session, settings, now, user, actor=actor, welcome=True)
    return user


async def get_user(*, session: AsyncSession, actor: Principal | None, user_id: str) -> User:
    """Admins of the user's organisation, services, and the user themself."""
    user, _ = await user_for_admin(
        session, actor, uuid_or_raise("user_id", user_id), services=True, themself=True
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
    login: str = "",
) -> Page[User]:
    """Prefix search on last and first name, accents and case ignored, sorted by name; or the
    account of a username or an e-mail address (`login`, whole, case ignored)."""
    v = Validator()
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    v.raise_if_any()
    assert org_id is not None
    # Who may search comes first: another tenant's organisation is a 404 whatever the query.
    await organisation_for_admin(session, actor, org_id)
    last, first = fold(last_name), fold(first_name)
    login = login.strip().lower()
    if not last and not first and not login:
        v.check(
            False,
            "last_name",
            "give a name, a username or an e-mail address to search for",
            code="name_to_search",
        )
    v.check(
        len(last_name.strip()) <= 100,
        "last_name",
        "must be at most 100 characters",
        code="string_too_long",
    )
    v.check(
        len(first_name.strip()) <= 100,
        "first_name",
        "must be at most 100 characters",
        code="string_too_long",
    )
    v.check(len(login) <= 320, "login", "must be at most 320 characters", code="string_too_long")
    page = _parse_page(v, "user-search", page_size, page_token, [str, str, uuid.UUID])
    v.raise_if_any()
    query = select(User).where(User.organisation_id == org_id)
    if login:
        # Both sides lowered: the indexes on lower(username) and lower(email) answer it.
        query = query.where(
            or_(func.lower(User.username) == login, func.lower(User.email) == login)
        )
    if last:
        query = query.where(User.search_last_name.startswith(last, autoescape=True))
    if first:
        query = query.where(User.search_first_name.startswith(first, autoescape=True))
    columns = [User.search_last_name, User.search_first_name, User.id]
    query = query.where(*_after(page, columns)).order_by(*columns)
    return await fetch_page(
        session,
        query,
        page,
        "user-search",
        lambda u: (u.search_last_name, u.search_first_name, u.id),
    )


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
    parsed_id = parse_uuid(v, "user_id", user_id)
    address = check_email(v, "email", email, required=True)
    v.raise_if_any()
    assert parsed_id is not None and address is not None
    user, _ = await user_for_admin(session, actor, parsed_id, lock=True)
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
        await send_reset(session, settings, now, user, actor=actor, welcome=True)
    else:
        await send_verification(session, settings, now, user)
    return user


async def list_audit_events(
    *, session: AsyncSession, actor: Principal | None, user_id: str, page_size: int, page_token: str
) -> Page[AuditEvent]:
    """A user's audit trail, newest first, for the admins of their organisation."""
    v = Validator()
    parsed_id = parse_uuid(v, "user_id", user_id)
    page = _parse_page(v, "audit", page_size, page_token, [parse_timestamp, int])
    v.raise_if_any()
    assert parsed_id is not None
    await user_for_admin(session, actor, parsed_id)
    columns = [AuditEvent.time, AuditEvent.seq]
    query = (
        select(AuditEvent)
        .where(AuditEvent.user_id == parsed_id)
        .where(*_after(page, columns, descending=True))
        .order_by(AuditEvent.time.desc(), AuditEvent.seq.desc())
    )
    return await fetch_page(session, query, page, "audit", lambda e: (e.time.isoformat(), e.seq))
