"""The account itself: a new user row, the unique username, the profile and when it is complete.

An account is complete when every profile field is set and its e-mail is verified; the admin's
validation queue lists only complete accounts (`complete_clause` is `profile_missing` in SQL).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import audit, check_name, clean, taken_error
from services.identity.domain.roles import require_user
from services.identity.models import Membership, Organisation, User, UserStatus
from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, PermissionDenied, Unauthenticated, Validator

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
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_POSTAL_CODE = re.compile(r"^[A-Za-z0-9 -]{2,16}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


def complete_clause() -> ColumnElement[bool]:
    return and_(
        User.email.is_not(None),
        User.email_verified.is_(True),
        *[getattr(User, name).is_not(None) for name in PROFILE_FIELDS],
        *[getattr(User, name) != "" for name in PROFILE_FIELDS if name != "birth_date"],
    )


def new_user(
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


def username_taken() -> AlreadyExists:
    return taken_error("username", "this username is already taken")


async def ensure_username_free(session: AsyncSession, username: str) -> None:
    clash = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower())
    )
    if clash is not None:
        raise username_taken()


async def _me(session: AsyncSession, actor: Principal | None, *, lock: bool = False) -> User:
    actor = require_user(actor)
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
    values = {name: clean(getattr(profile, name)) for name in PROFILE_FIELDS}
    for name, limit in _PROFILE_LIMITS.items():
        check_name(v, f"profile.{name}", values[name], limit)
    phone, postal_code = values["phone"], values["postal_code"]
    v.require("profile.phone", phone)
    if phone:
        v.check(
            bool(_PHONE.match(phone)),
            "profile.phone",
            "is not a valid phone number",
            code="string_pattern_mismatch",
        )
        v.check(
            not _PHONE.match(phone) or sum(c.isdigit() for c in phone) >= 6,
            "profile.phone",
            "is not a valid phone number: at least 6 digits",
            code="phone_digits",
        )
    v.require("profile.postal_code", postal_code)
    if postal_code:
        v.check(
            bool(_POSTAL_CODE.match(postal_code)),
            "profile.postal_code",
            "is not a valid postal code",
            code="string_pattern_mismatch",
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
            v.check(
                False,
                "profile.birth_date",
                "must be a date written YYYY-MM-DD",
                code="date_parsing",
            )
        else:
            v.check(
                birth_date <= now.date(),
                "profile.birth_date",
                "must not be in the future",
                code="in_the_future",
            )
            v.check(
                birth_date.year >= 1900, "profile.birth_date", "must be after 1900", code="too_old"
            )
    v.raise_if_any()
    user.first_name, user.last_name = values["first_name"], values["last_name"]
    user.phone, user.address_line = phone, values["address_line"]
    user.postal_code, user.city, user.birth_date = postal_code, values["city"], birth_date
    user.search_first_name, user.search_last_name = fold(user.first_name), fold(user.last_name)
    user.updated_at = now
    audit(session=session, now=now, event="profile.updated", actor=actor, user_id=user.id)
    return user
