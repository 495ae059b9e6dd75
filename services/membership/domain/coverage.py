"""First-aid coverage (DPS) requests: made publicly by event organisers, each matched to a client
record whose number is mailed with the acknowledgement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.membership.domain.common import (
    ASSOCIATION_KIND,
    Directory,
    check_date,
    check_email,
    check_phone,
    check_text,
    check_uuid,
    parse_moment,
    parse_uuid,
    queue_mail,
    require_association_admin,
)
from services.membership.domain.normalise import clean
from services.membership.domain.records import (
    RequesterInput,
    client_number_text,
    resolve_client_record,
)
from services.membership.domain.zones import association_today
from services.membership.models import ClientRecord, CoverageRequest
from services.membership.settings import MembershipSettings


@dataclass(frozen=True)
class OrganiserInput:
    company_name: str
    siret: str
    client_number: int
    contact_name: str
    email: str
    phone: str


@dataclass(frozen=True)
class CoverageView:
    request: CoverageRequest
    client: ClientRecord


async def request_coverage(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    directory: Directory,
    now: datetime,
    association_id: str,
    event_name: str,
    event_date: str,
    location: str,
    expected_attendance: int,
    organiser: OrganiserInput,
) -> tuple[CoverageView, bool]:
    """Public: an organiser asks for first-aid coverage; the client record is matched or made
    and the client number mailed with the acknowledgement."""
    v = Validator()
    parsed = check_uuid(v, "association_id", association_id)
    name = check_text(v, "event_name", event_name)
    day = check_date(v, "event_date", event_date)
    if day is not None and parsed is not None:
        today = await association_today(session, settings, parsed, now)
        v.check(
            day > today,
            "event_date",
            f"must be after today ({today.isoformat()})",
            code="in_the_past",
        )
    place = check_text(v, "location", location)
    v.check(
        0 < expected_attendance <= 1_000_000,
        "expected_attendance",
        "must be positive",
        code="greater_than_equal",
    )
    check_text(v, "organiser.company_name", organiser.company_name)
    contact = check_text(v, "organiser.contact_name", organiser.contact_name)
    email = check_email(v, "organiser.email", organiser.email)
    phone = check_phone(v, "organiser.phone", organiser.phone)
    v.raise_if_any()
    assert parsed is not None and day is not None
    found = await directory.organisation(parsed)
    if found is None or found.kind != ASSOCIATION_KIND:
        raise NotFound("association not found")
    record, created = await resolve_client_record(
        session,
        now=now,
        association_id=parsed,
        requester=RequesterInput(
            company_name=organiser.company_name,
            siret=organiser.siret,
            client_number=organiser.client_number,
            email=email,
            contact_name=contact,
        ),
        field_prefix="organiser.",
    )
    request = CoverageRequest(
        id=uuid.uuid4(),
        association_id=parsed,
        event_name=name,
        event_date=day,
        location=place,
        expected_attendance=expected_attendance,
        company_name=clean(organiser.company_name),
        siret=record.siret if organiser.siret.strip() else None,
        contact_name=contact,
        email=email,
        phone=phone,
        client_record_id=record.id,
        created_at=now,
    )
    session.add(request)
    await session.flush()
    await queue_mail(
        session,
        settings,
        to=email,
        subject=f"Demande de dispositif de secours reçue : {name}",
        kind="coverage_request",
        body=(
            f"Bonjour {contact},\n\nNous avons bien reçu votre demande de dispositif prévisionnel "
            f"de secours pour « {name} » le {day.isoformat()} ({place}).\n\n"
            f"{client_number_text(record, created)}\n\nRéférence : {request.id}\n"
        ),
    )
    return CoverageView(request, record), created


async def list_coverage_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[CoverageView]:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "coverage", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [CoverageRequest.created_at, CoverageRequest.id]
    query = (
        select(CoverageRequest, ClientRecord)
        .join(ClientRecord, ClientRecord.id == CoverageRequest.client_record_id)
        .where(CoverageRequest.association_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
        .limit(page.size + 1)
    )
    rows = [CoverageView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].request
        token = _page_token("coverage", (last.created_at.isoformat(), last.id))
    return Page(rows, token)
