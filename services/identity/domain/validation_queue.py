"""The admin's "accounts to validate": complete pending accounts, and their validation.

Pending accounts still missing something are listed apart (`incomplete=True`), each saying what
(`accounts.profile_missing`), so that an admin sees who waits and on what instead of an empty
queue; a refused validation names the missing items too (field violations). In an association
the member must also have paid this year's fee, asked of the `FeeLedger` (the membership
service, `services.identity.fees`) once every local rule passed. A validated member is told by
mail that the account is open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.accounts import PROFILE_FIELDS, complete_clause, profile_missing
from services.identity.domain.common import (
    audit,
    fetch_page,
    greeting,
    kind_of,
    parse_timestamp,
    parse_uuid,
    queue_mail,
    uuid_or_raise,
)
from services.identity.domain.roles import BASE_ROLE_BY_KIND, organisation_for_admin, user_for_admin
from services.identity.models import Membership, OrganisationKind, User, UserStatus
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page


async def list_accounts_to_validate(
    *,
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: str,
    page_size: int,
    page_token: str,
    incomplete: bool = False,
) -> Page[User]:
    """Pending accounts whose information is complete (verified e-mail included), oldest first;
    with `incomplete`, the pending accounts still missing something instead."""
    v = Validator()
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    kind = "to-complete" if incomplete else "to-validate"
    page = _parse_page(v, kind, page_size, page_token, [parse_timestamp, uuid.UUID])
    v.raise_if_any()
    assert org_id is not None
    await organisation_for_admin(session, actor, org_id)
    columns = [User.created_at, User.id]
    query = (
        select(User)
        .where(
            User.organisation_id == org_id,
            User.status == UserStatus.PENDING.value,
            ~complete_clause() if incomplete else complete_clause(),
        )
        .where(*_after(page, columns))
        .order_by(*columns)
    )
    return await fetch_page(session, query, page, kind, lambda u: (u.created_at.isoformat(), u.id))


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


def _missing_violation(name: str) -> tuple[str, str]:
    """A missing item of `profile_missing` as the field that lacks it and why."""
    if name == "email_verified":
        return "email", "is not confirmed yet: the member must follow the link mailed to them"
    if name in PROFILE_FIELDS:
        return f"profile.{name}", "is required"
    return name, "is required"


async def validate_account(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    fees: FeeLedger,
) -> User:
    """An admin accepts a complete pending account: ACTIVE, with the kind's base role if none,
    and a mail telling the member that the account is open.

    In an association the member must also have paid this year's fee (asked last, once every
    local rule passed, so a refused request costs no remote call).
    """
    user, organisation = await user_for_admin(
        session, actor, uuid_or_raise("user_id", user_id), lock=True
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
        # Each missing item as a field violation: what the admin's page lists, and what the
        # member must still do.
        raise FailedPrecondition(
            "this account's information is incomplete: " + "; ".join(parts),
            reason="profile_incomplete",
            violations=[_missing_violation(name) for name in missing],
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
    if not user.memberships and (base := BASE_ROLE_BY_KIND.get(kind_of(organisation.kind))):
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
    if user.email:
        await queue_mail(
            session,
            settings,
            to=user.email,
            subject="Votre compte est validé",
            body=(
                f"{greeting(user)}\n\n"
                f"Un administrateur de {organisation.name} a validé votre compte : vous avez "
                f"maintenant accès à votre espace.\n{settings.public_base_url}/\n\n"
                f"Votre identifiant : {user.username}\n"
            ),
        )
    return user
