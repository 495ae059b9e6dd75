"""Association trainings and their registrations: public registration (one live registration
per person and training type, a client record for each), validation by an admin, the trainees'
list and corrected addresses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.membership.domain.common import (
    association_and,
    check_code,
    check_date,
    check_email,
    check_phone,
    check_text,
    check_uuid,
    fetch_page,
    flush_or_raise,
    parse_moment,
    parse_uuid,
    queue_mail,
    require_association_admin,
)
from services.membership.domain.normalise import fold
from services.membership.domain.records import (
    RequesterInput,
    client_number_text,
    live_record,
    lock_keys,
    resolve_client_record,
)
from services.membership.domain.zones import association_today
from services.membership.models import (
    ClientRecord,
    RegistrationStatus,
    Training,
    TrainingRegistration,
)
from services.membership.settings import MembershipSettings


@dataclass(frozen=True)
class TrainingView:
    training: Training
    seats_taken: int


@dataclass(frozen=True)
class TraineeInput:
    first_name: str
    last_name: str
    birth_date: str
    email: str
    phone: str


@dataclass(frozen=True)
class RegistrationView:
    registration: TrainingRegistration
    client: ClientRecord


@dataclass(frozen=True)
class RegistrationResult:
    view: RegistrationView
    cancelled_registration_id: uuid.UUID | None
    new_client_record: bool


def _live_registrations() -> ColumnElement[bool]:
    return TrainingRegistration.status != RegistrationStatus.CANCELLED.value


async def _training_seats(
    session: AsyncSession, training_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    ids = list(set(training_ids))
    counts = {training_id: 0 for training_id in ids}
    if ids:
        rows = await session.execute(
            select(TrainingRegistration.training_id, func.count())
            .where(TrainingRegistration.training_id.in_(ids), _live_registrations())
            .group_by(TrainingRegistration.training_id)
        )
        counts.update({training_id: int(count) for training_id, count in rows})
    return counts


def person_key(first_name: str, last_name: str, birth_date: date) -> str:
    """Who a trainee is, whatever e-mail they type: folded names and birth date."""
    return f"{fold(last_name)[:110]}|{fold(first_name)[:110]}|{birth_date.isoformat()}"


async def create_training(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    training_type: str,
    title: str,
    starts_at: datetime | None,
    location: str,
    capacity: int,
    public: bool,
) -> TrainingView:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    kind = check_code(v, "training_type", training_type)
    title = check_text(v, "title", title)
    v.check(starts_at is not None, "start_time", "is required")
    if starts_at is not None:
        v.check(starts_at > now, "start_time", "must be in the future", code="in_the_past")
    location = check_text(v, "location", location)
    v.check(1 <= capacity <= 1000, "capacity", "must be between 1 and 1000", code="less_than_equal")
    v.raise_if_any()
    assert starts_at is not None
    training = Training(
        id=uuid.uuid4(),
        association_id=parsed,
        training_type=kind,
        title=title,
        starts_at=starts_at,
        location=location,
        capacity=capacity,
        public=public,
        created_at=now,
    )
    session.add(training)
    await session.flush()
    return TrainingView(training, 0)


async def _list_trainings(
    session: AsyncSession,
    association_id: uuid.UUID,
    query_filter: Sequence[ColumnElement[bool]],
    page_size: int,
    page_token: str,
) -> Page[TrainingView]:
    v = Validator()
    page = _parse_page(v, "trainings", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [Training.starts_at, Training.id]
    query = (
        select(Training)
        .where(Training.association_id == association_id, *query_filter, *_after(page, columns))
        .order_by(*columns)
    )
    result = await fetch_page(
        session, query, page, "trainings", lambda t: (t.starts_at.isoformat(), t.id)
    )
    seats = await _training_seats(session, (t.id for t in result.items))
    return Page([TrainingView(t, seats[t.id]) for t in result.items], result.next_page_token)


async def list_trainings(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[TrainingView]:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    return await _list_trainings(session, parsed, [], page_size, page_token)


async def list_public_trainings(
    *, session: AsyncSession, now: datetime, association_id: str, page_size: int, page_token: str
) -> Page[TrainingView]:
    """Public: the upcoming public trainings of an association."""
    parsed = parse_uuid("association_id", association_id)
    return await _list_trainings(
        session,
        parsed,
        [Training.public.is_(True), Training.starts_at > now],
        page_size,
        page_token,
    )


async def register_for_training(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    now: datetime,
    association_id: str,
    training_id: str,
    trainee: TraineeInput,
    requester: RequesterInput,
) -> RegistrationResult:
    """Public. An earlier registration of the same person for a training of the same type is
    cancelled, unless it was validated: then the new one is refused. Serialised per person and
    type (advisory lock), and held by partial unique indexes whatever happens."""
    v = Validator()
    association = check_uuid(v, "association_id", association_id)
    parsed = check_uuid(v, "training_id", training_id)
    first = check_text(v, "trainee.first_name", trainee.first_name, limit=100)
    last = check_text(v, "trainee.last_name", trainee.last_name, limit=100)
    born = check_date(v, "trainee.birth_date", trainee.birth_date)
    if born is not None:
        today = (
            await association_today(session, settings, association, now)
            if association is not None
            else now.date()
        )
        v.check(born < today, "trainee.birth_date", "must be in the past", code="in_the_future")
        v.check(born.year >= 1900, "trainee.birth_date", "must be after 1900", code="too_old")
    email = check_email(v, "trainee.email", trainee.email)
    phone = check_phone(v, "trainee.phone", trainee.phone)
    v.raise_if_any()
    assert born is not None
    training = await session.get(Training, parsed)
    if training is None or not training.public or training.association_id != association:
        raise NotFound("training not found")
    if training.starts_at <= now:
        raise FailedPrecondition("this training has already started", reason="training_started")
    key = person_key(first, last, born)
    await lock_keys(
        session, [f"registration:{training.association_id}:{key}:{training.training_type}"]
    )
    earlier = list(
        await session.scalars(
            select(TrainingRegistration)
            .where(
                TrainingRegistration.association_id == training.association_id,
                TrainingRegistration.person_key == key,
                TrainingRegistration.training_type == training.training_type,
                _live_registrations(),
            )
            .with_for_update()
        )
    )
    validated = [r for r in earlier if r.status == RegistrationStatus.VALIDATED]
    if validated:
        raise FailedPrecondition(
            f"{first} {last} already has a validated registration for a "
            f"{training.training_type} training: a new registration for this type is refused",
            reason="already_validated",
        )
    cancelled_id = None
    for registration in earlier:
        registration.status = RegistrationStatus.CANCELLED.value
        registration.cancelled_at = now
        registration.cancel_reason = (
            f"replaced by a new registration for the {training.training_type} training "
            f"« {training.title} » of {training.starts_at.date().isoformat()}"
        )
        cancelled_id = registration.id
    await session.flush()
    # The training row keeps concurrent registrations within its capacity.
    await session.refresh(training, with_for_update=True)
    if (await _training_seats(session, [training.id]))[training.id] >= training.capacity:
        raise FailedPrecondition("this training is full", reason="training_full")
    company = requester.company_name.strip() or f"{last.upper()} {first}"
    known = None
    if not (requester.company_name.strip() or requester.siret.strip() or requester.client_number):
        # A civilian on their own: the record of their earlier registrations, however they typed
        # their name this time (the person key matched).
        known = await session.scalar(
            select(ClientRecord)
            .join(TrainingRegistration, TrainingRegistration.client_record_id == ClientRecord.id)
            .where(
                TrainingRegistration.association_id == training.association_id,
                TrainingRegistration.person_key == key,
            )
            .order_by(TrainingRegistration.created_at.desc())
            .limit(1)
        )
    if known is not None:
        record, created = await live_record(session, known), False
    else:
        record, created = await resolve_client_record(
            session,
            now=now,
            association_id=training.association_id,
            requester=RequesterInput(
                company_name=company,
                siret=requester.siret,
                client_number=requester.client_number,
                email=email,
                contact_name=f"{first} {last}",
            ),
            field_prefix="requester.",
        )
    registration = TrainingRegistration(
        id=uuid.uuid4(),
        training_id=training.id,
        association_id=training.association_id,
        training_type=training.training_type,
        first_name=first,
        last_name=last,
        birth_date=born,
        email=email,
        phone=phone,
        person_key=key,
        status=RegistrationStatus.REGISTERED.value,
        client_record_id=record.id,
        created_at=now,
    )
    session.add(registration)
    await flush_or_raise(
        session,
        {
            "uq_training_registrations_registered": FailedPrecondition(
                "another registration of this person for this type was made at the same time",
                reason="concurrent_registration",
            )
        },
    )
    body = [
        f"Bonjour {first},",
        "",
        f"Votre inscription à la formation « {training.title} » ({training.training_type}) du "
        f"{training.starts_at.date().isoformat()}, {training.location}, est enregistrée.",
    ]
    if cancelled_id is not None:
        body.append(
            f"Votre précédente inscription à une formation {training.training_type} est annulée."
        )
    body += ["", client_number_text(record, created), "", f"Référence : {registration.id}"]
    await queue_mail(
        session,
        settings,
        to=email,
        subject=f"Inscription confirmée : {training.title}",
        kind="training_registered",
        body="\n".join(body),
    )
    return RegistrationResult(RegistrationView(registration, record), cancelled_id, created)


async def _registration_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    registration_id: str,
    *,
    lock: bool = False,
) -> TrainingRegistration:
    association, parsed = association_and(actor, association_id, "registration_id", registration_id)
    registration = await session.get(TrainingRegistration, parsed, with_for_update=lock or None)
    if registration is None or registration.association_id != association:
        raise NotFound("registration not found")
    return registration


async def validate_registration(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    registration_id: str,
) -> RegistrationView:
    """An admin validates a registration; the trainee is told at their current address."""
    registration = await _registration_for_admin(session, actor, association_id, registration_id)
    await lock_keys(
        session,
        [
            f"registration:{registration.association_id}:{registration.person_key}:"
            f"{registration.training_type}"
        ],
    )
    await session.refresh(registration, with_for_update=True)
    if registration.status == RegistrationStatus.VALIDATED:
        raise FailedPrecondition(
            "this registration is already validated", reason="already_validated"
        )
    if registration.status == RegistrationStatus.CANCELLED:
        raise FailedPrecondition(
            f"this registration was cancelled ({registration.cancel_reason})", reason="cancelled"
        )
    registration.status = RegistrationStatus.VALIDATED.value
    registration.validated_at = now
    await flush_or_raise(
        session,
        {
            "uq_training_registrations_validated": FailedPrecondition(
                "this person already has a validated registration for this type of training",
                reason="already_validated",
            )
        },
    )
    training = await session.get(Training, registration.training_id)
    record = await session.get(ClientRecord, registration.client_record_id)
    assert training is not None and record is not None
    await queue_mail(
        session,
        settings,
        to=registration.email,
        subject=f"Inscription validée : {training.title}",
        kind="training_validated",
        body=(
            f"Bonjour {registration.first_name},\n\nVotre inscription à la formation "
            f"« {training.title} » du {training.starts_at.date().isoformat()} est validée.\n"
        ),
    )
    return RegistrationView(registration, record)


async def list_trainees(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    training_id: str,
    include_cancelled: bool,
    page_size: int,
    page_token: str,
) -> Page[RegistrationView]:
    association, parsed = association_and(actor, association_id, "training_id", training_id)
    training = await session.get(Training, parsed)
    if training is None or training.association_id != association:
        raise NotFound("training not found")
    v = Validator()
    page = _parse_page(v, "trainees", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [TrainingRegistration.last_name, TrainingRegistration.id]
    query = (
        select(TrainingRegistration, ClientRecord)
        .join(ClientRecord, ClientRecord.id == TrainingRegistration.client_record_id)
        .where(TrainingRegistration.training_id == parsed, *_after(page, columns))
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if not include_cancelled:
        query = query.where(_live_registrations())
    rows = [RegistrationView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].registration
        token = _page_token("trainees", (last.last_name, last.id))
    return Page(rows, token)


async def correct_trainee_email(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    registration_id: str,
    email: str,
) -> RegistrationView:
    """Future mails go to the corrected address; mails already sent are not sent again."""
    v = Validator()
    address = check_email(v, "email", email)
    v.raise_if_any()
    registration = await _registration_for_admin(
        session, actor, association_id, registration_id, lock=True
    )
    registration.email = address
    record = await session.get(ClientRecord, registration.client_record_id)
    assert record is not None
    return RegistrationView(registration, record)
