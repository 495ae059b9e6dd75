"""Associations' time zones: the calendar an association's days are counted in.

A fee paid "today", a coverage request that must be "after today", a birth date "in the past":
each is a day of the association's own calendar, not of UTC. An association sets its zone here
(its administrators, or an ops admin); until then the service's `DEFAULT_TIME_ZONE` applies.
(Programs and workshops carry theirs on their own rows: `banner.py`.)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import local_today
from services.kit.errors import Validator
from services.membership.domain.common import (
    actor_id,
    check_time_zone,
    check_uuid,
    require_association_admin,
)
from services.membership.models import AssociationSettings
from services.membership.settings import MembershipSettings


@dataclass(frozen=True)
class AssociationZone:
    association_id: uuid.UUID
    time_zone: str
    # False while the association runs on the service's default.
    chosen: bool
    updated_by: str = ""
    updated_at: datetime | None = None


async def association_time_zone(
    session: AsyncSession, settings: MembershipSettings, association_id: uuid.UUID
) -> str:
    row = await session.get(AssociationSettings, association_id)
    return row.time_zone if row is not None else settings.default_time_zone


async def association_today(
    session: AsyncSession, settings: MembershipSettings, association_id: uuid.UUID, now: datetime
) -> date:
    """The day it is for the association."""
    return local_today(now, await association_time_zone(session, settings, association_id))


def _parse(v: Validator, association_id: str) -> uuid.UUID | None:
    return check_uuid(v, "association_id", association_id)


async def get_association_zone(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    association_id: str,
) -> AssociationZone:
    v = Validator()
    parsed = _parse(v, association_id)
    v.raise_if_any()
    assert parsed is not None
    require_association_admin(actor, parsed)
    row = await session.get(AssociationSettings, parsed)
    if row is None:
        return AssociationZone(parsed, settings.default_time_zone, chosen=False)
    return AssociationZone(parsed, row.time_zone, True, row.updated_by, row.updated_at)


async def set_association_zone(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    time_zone: str,
) -> AssociationZone:
    """The association's administrators (or an ops admin) set the zone its days are counted in."""
    v = Validator()
    parsed = _parse(v, association_id)
    v.raise_if_any()
    assert parsed is not None
    actor = require_association_admin(actor, parsed)
    zone = check_time_zone(v, "time_zone", time_zone)
    v.raise_if_any()
    who = actor_id(actor)
    await session.execute(
        pg_insert(AssociationSettings)
        .values(association_id=parsed, time_zone=zone, updated_by=who, updated_at=now)
        .on_conflict_do_update(
            index_elements=[AssociationSettings.association_id],
            set_={"time_zone": zone, "updated_by": who, "updated_at": now},
        )
    )
    return AssociationZone(parsed, zone, True, who, now)
