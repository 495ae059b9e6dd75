"""Renewals on the days people live by, on Temporal's time-skipping server (years in seconds).

Real identity and membership services, the membership outbox and signal relays on the
time-skipping server, a worker there, and membership's clock pinned to the server's time at each
step (`PinnedClock` through `start_service`), so each case is one test, not a wait:

- 29 February: eight years of renewals from 2028-02-29 renew on the 28th in common years and on
  the 29th again in leap years (each computed from the anniversary, not the previous renewal);
- local days across a change of daylight saving time: a Paris program's letter leaves at midnight
  in Paris in winter time, its window opens at midnight in Paris in summer time; a workshop in
  Montréal gets its own midnights; at 00:14 in Paris on the renewal day (23:14 UTC the day
  before) a removal is already accepted;
- one letter per renewal: a date corrected after the letter left sends no second letter, unless
  the program team asks, which is recorded;
- the timers say what they wait for, and the run is found by the workshop's code.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from guichet.identity.v1 import identity_pb2
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from services.kit.clock import PinnedClock
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import WORKSHOP_CODE
from services.kit.testing import DatabaseServer, skip_time
from services.membership.models import RenewalLetter
from tests.identity.harness import WORKSHOP
from tests.membership.harness import (
    Workshop,
    World,
    fails,
    register_search_attributes,
    running_world,
)
from workflows.contracts.membership import renewal_workflow_id
from workflows.renewal import Renewal, RenewalResult, RenewalStatus

TIME_ZONES_HISTORY = Path(__file__).resolve().parents[1] / "histories" / "renewal_time_zones.json"
PARIS = ZoneInfo("Europe/Paris")
MONTREAL = ZoneInfo("America/Montreal")
Handle = WorkflowHandle[Renewal, RenewalResult]


class Scene:
    """The world, the time-skipping server, and membership's clock kept on the server's time."""

    def __init__(self, world: World, env: WorkflowEnvironment, clock: PinnedClock) -> None:
        self.world = world
        self.env = env
        self.clock = clock

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def go_to(self, moment: datetime) -> None:
        """Skips the server's time to `moment`; membership's clock follows."""
        gap = moment - await self.now()
        assert gap > timedelta(0), f"{moment} is in the past"
        await skip_time(self.env, gap)
        self.clock.pin(await self.now())

    async def program(self, time_zone: str) -> pb.Program:
        created: pb.CreateProgramResponse = await self.world.stub.CreateProgram(
            pb.CreateProgramRequest(
                code=f"P{uuid.uuid4().hex[:8].upper()}",
                name=f"Programme {uuid.uuid4().hex[:6]}",
                benefits=["Garantie main d'œuvre nationale"],
                time_zone=time_zone,
            ),
            metadata=self.world.ops,
        )
        await self.world.stub.AddProgramOption(
            pb.AddProgramOptionRequest(
                program_id=created.program.id, code="OPT0", name="Option 0", benefit="Bénéfice"
            ),
            metadata=self.world.ops,
        )
        listed: pb.ListProgramsResponse = await self.world.stub.ListPrograms(
            pb.ListProgramsRequest(), metadata=self.world.ops
        )
        return next(p for p in listed.programs if p.id == created.program.id)

    async def enrol(
        self, shop: Workshop, program: pb.Program, renewal: date, *, time_zone: str = ""
    ) -> tuple[pb.WorkshopMembership, Handle]:
        tag = uuid.uuid4().hex[:8]
        response: pb.CreateWorkshopMembershipResponse = (
            await self.world.stub.CreateWorkshopMembership(
                pb.CreateWorkshopMembershipRequest(
                    workshop_id=shop.id,
                    program_id=program.id,
                    renewal_date=renewal.isoformat(),
                    workshop=pb.WorkshopInfo(email=f"atelier.{tag}@example.org"),
                    wholesaler=pb.Contact(name="Grossiste", email=f"grossiste.{tag}@example.org"),
                    distributor=pb.Contact(name="DDA", email=f"dda.{tag}@example.org"),
                    option_ids=[program.options[0].id],
                    time_zone=time_zone,
                ),
                metadata=self.world.ops,
            )
        )
        handle = self.env.client.get_workflow_handle_for(
            Renewal.run, renewal_workflow_id(response.membership.id)
        )
        return response.membership, handle

    async def phase(self, handle: Handle, phase: str, **expected: object) -> RenewalStatus:
        async def check() -> RenewalStatus | None:
            try:
                status: RenewalStatus = await handle.query(Renewal.status)
            except Exception:
                return None
            if status.phase != phase:
                return None
            if any(getattr(status, name) != value for name, value in expected.items()):
                return None
            return status

        found: RenewalStatus = await self.world.wait(
            check, within=60, what=f"phase {phase} {expected}"
        )
        return found

    async def view(self, shop: Workshop) -> pb.WorkshopMembership:
        response = await self.world.stub.GetWorkshop(
            pb.GetWorkshopRequest(workshop_id=shop.id), metadata=self.world.operator_auth
        )
        membership: pb.WorkshopMembership = response.membership
        return membership


@pytest.fixture
async def scene(
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[Scene]:
    await register_search_attributes(time_skipping_env.client)
    clock = PinnedClock((await time_skipping_env.get_current_time()).astimezone(UTC))
    async with running_world(
        pg, time_skipping_env.client, smtp_sink, identity_temporal=temporal_env.client, clock=clock
    ) as world:
        yield Scene(world, time_skipping_env, clock)


def local(day: date, zone: ZoneInfo, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


async def _runs(client: Client, handle: Handle) -> list[list[HistoryEvent]]:
    """The events of every run of the workflow, first run first (continue-as-new chains)."""
    runs: list[list[HistoryEvent]] = []
    run_id: str | None = (await handle.describe()).run_id
    while run_id is not None:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        runs.insert(0, list(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
    return runs


async def fired_at(client: Client, handle: Handle, summary: str) -> list[datetime]:
    """When the timers whose summary starts with `summary` fired (the server's time), across
    runs: what the workflow waited for, and the instant it woke."""
    found: list[datetime] = []
    for events in await _runs(client, handle):
        wanted = {
            event.event_id
            for event in events
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
            and json.loads(event.user_metadata.summary.data or b'""').startswith(summary)
        }
        for event in events:
            if event.event_type != EventType.EVENT_TYPE_TIMER_FIRED:
                continue
            if event.timer_fired_event_attributes.started_event_id in wanted:
                found.append(event.event_time.ToDatetime(tzinfo=UTC))
    return found


async def scheduled(client: Client, handle: Handle, activity: str) -> int:
    """How many times the workflow's runs scheduled `activity`."""
    return sum(
        event.activity_task_scheduled_event_attributes.activity_type.name == activity
        for events in await _runs(client, handle)
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


# A timer fires at its instant, never before; a loaded machine may record it a little after.
# Midnight in a zone and midnight UTC are hours apart, so a few minutes still tell them apart.
LATE = timedelta(minutes=5)


def near(moment: datetime, expected: datetime) -> bool:
    return expected <= moment < expected + LATE


# --- 29 February ----------------------------------------------------------------------------------


async def test_eight_years_of_renewals_from_29_february_keep_the_anniversary(scene: Scene) -> None:
    world = scene.world
    program = await scene.program("Europe/Paris")
    shop = await world.workshop()
    membership, handle = await scene.enrol(shop, program, date(2028, 2, 29))
    assert membership.anniversary == "2028-02-29"
    await scene.phase(handle, "waiting_for_letter", renewal_date="2028-02-29")

    expected = [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
        date(2033, 2, 28),
        date(2034, 2, 28),
        date(2035, 2, 28),
        date(2036, 2, 29),
    ]
    for year, renewal in enumerate(expected[:-1]):
        # Through the renewal, then past the window's close: the workflow moves to next year.
        await scene.go_to(local(renewal, PARIS) + timedelta(days=31))
        await scene.phase(
            handle,
            "waiting_for_letter",
            cycle=year + 1,
            renewal_date=expected[year + 1].isoformat(),
        )

    view = await scene.view(shop)
    assert view.renewal_date == "2036-02-29" and view.anniversary == "2028-02-29"
    async with world.sessions.begin() as session:
        letters = list(
            await session.scalars(
                select(RenewalLetter)
                .where(RenewalLetter.membership_id == uuid.UUID(membership.id))
                .order_by(RenewalLetter.renewal_number)
            )
        )
    # One letter per renewal, each announcing the day the window then opened.
    assert [letter.renewal_date for letter in letters] == expected[:-1]
    assert [letter.renewal_number for letter in letters] == list(range(1, 9))
    opened = await fired_at(scene.env.client, handle, "renewal ")
    assert [moment.astimezone(PARIS).date() for moment in opened] == expected[:-1]
    assert all(moment.astimezone(PARIS).time() < time(0, 5) for moment in opened)


# --- local days across a change of daylight saving time ------------------------------------------


async def test_letter_and_window_on_paris_days_across_the_change_to_summer_time(
    scene: Scene,
) -> None:
    world = scene.world
    client = scene.env.client
    program = await scene.program("Europe/Paris")
    assert program.time_zone == "Europe/Paris"
    shop = await world.workshop()
    # Summer time starts on Sunday 2027-03-28: the letter's day is in winter time (UTC+1), the
    # renewal day in summer time (UTC+2).
    renewal = date(2027, 3, 29)
    membership, handle = await scene.enrol(shop, program, renewal)
    assert membership.effective_time_zone == "Europe/Paris" and membership.time_zone == ""
    assert membership.letter.due_on == "2027-02-27" and not membership.letter.sent
    # Its timer is set before time moves (the outbox starts it; a busy machine takes a while).
    await scene.phase(handle, "waiting_for_letter", time_zone="Europe/Paris")
    recipients = [membership.workshop.email, membership.wholesaler.email]

    # 23:59 in Paris the day before the letter's day: nothing yet; past midnight there (23:00
    # UTC), the letter has left.
    await scene.go_to(local(date(2027, 2, 26), PARIS, 23, 59))
    assert all(world.smtp.to(address) == [] for address in recipients)
    await scene.go_to(local(date(2027, 2, 27), PARIS, 0, 5))
    for address in recipients:
        await world.mails(address)
    [letter_at] = await fired_at(client, handle, "anniversary letter")
    assert near(letter_at, datetime(2027, 2, 26, 23, 0, tzinfo=UTC))
    assert (await scene.view(shop)).letter.sent

    # The case: 00:14 in Paris on the renewal day is 22:14 UTC the day before (summer
    # time). The window is open and a removal accepted; at midnight UTC, as before, it was
    # refused until 02:00 in Paris.
    await scene.go_to(datetime(2027, 3, 28, 22, 14, tzinfo=UTC))
    await scene.phase(handle, "window_open")
    [opened_at] = await fired_at(client, handle, "renewal ")
    assert near(opened_at, datetime(2027, 3, 28, 22, 0, tzinfo=UTC))
    removal = await world.stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(
            workshop_id=shop.id,
            option_id=program.options[0].id,
            change=pb.OPTION_CHANGE_REMOVE,
            channel=pb.REQUEST_CHANNEL_PORTAL,
        ),
        metadata=shop.auth,
    )
    assert removal.request.status == pb.OPTION_CHANGE_STATUS_PENDING

    # The window closes at midnight in Paris 30 days later (2027-04-28, summer time).
    await scene.go_to(datetime(2027, 4, 27, 22, 5, tzinfo=UTC))
    await scene.phase(handle, "waiting_for_letter", cycle=1, renewal_date="2028-03-29")
    [closed_at] = await fired_at(client, handle, "removal window closes")
    assert near(closed_at, datetime(2027, 4, 27, 22, 0, tzinfo=UTC))


async def test_a_workshop_in_montreal_lives_by_its_own_midnights(scene: Scene) -> None:
    """A Paris program, a workshop the team moves to Montréal: its letter at midnight there in
    summer time (UTC-4), its window after the return to standard time (UTC-5, 2027-11-07). The
    timers say what they wait for, and the run is found by the workshop's code."""
    world = scene.world
    client = scene.env.client
    program = await scene.program("Europe/Paris")
    code = f"WS-{uuid.uuid4().hex[:6].upper()}"
    created = await world.identity.stub.CreateOrganisation(
        identity_pb2.CreateOrganisationRequest(kind=WORKSHOP, name=f"Garage {code}", code=code),
        metadata=world.identity.admin,
    )
    owner = await world.identity.account(created.organisation.id, "workshop_owner")
    shop = Workshop(created.organisation.id, owner, await world.identity.token(owner))
    renewal = date(2027, 11, 8)
    membership, handle = await scene.enrol(shop, program, renewal)
    assert membership.workshop_code == code
    await scene.phase(handle, "waiting_for_letter", time_zone="Europe/Paris")

    refused = await fails(
        world.stub.SetWorkshopTimeZone(
            pb.SetWorkshopTimeZoneRequest(workshop_id=shop.id, time_zone="Mars/Olympus"),
            metadata=world.operator_auth,
        )
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violations == [("time_zone", "is not an IANA time zone, e.g. Europe/Paris")]
    own = await fails(
        world.stub.SetWorkshopTimeZone(
            pb.SetWorkshopTimeZoneRequest(workshop_id=shop.id, time_zone="America/Montreal"),
            metadata=shop.auth,
        )
    )
    assert own.code == grpc.StatusCode.PERMISSION_DENIED
    moved = await world.stub.SetWorkshopTimeZone(
        pb.SetWorkshopTimeZoneRequest(workshop_id=shop.id, time_zone="America/Montreal"),
        metadata=world.operator_auth,
    )
    assert moved.membership.time_zone == "America/Montreal"
    assert moved.membership.effective_time_zone == "America/Montreal"
    await scene.phase(handle, "waiting_for_letter", time_zone="America/Montreal")

    await scene.go_to(local(renewal, MONTREAL, 0, 5))
    await scene.phase(handle, "window_open")
    [letter_at] = await fired_at(client, handle, "anniversary letter")
    assert near(letter_at, datetime(2027, 10, 9, 4, 0, tzinfo=UTC))
    [opened_at] = await fired_at(client, handle, "renewal ")
    assert near(opened_at, datetime(2027, 11, 8, 5, 0, tzinfo=UTC))

    # The run replays with today's code (and is saved for the replay test when asked).
    history = await handle.fetch_history()
    replayed = await Replayer(workflows=[Renewal]).replay_workflow(history)
    assert replayed.replay_failure is None
    if os.environ.get("SAVE_RENEWAL_HISTORY"):
        text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
        TIME_ZONES_HISTORY.write_text(text)

    # What an operator reads in Temporal: the code, and what each timer waited for.
    description = await handle.describe()
    assert description.typed_search_attributes.get(WORKSHOP_CODE) == code
    summaries = [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert summaries[:4] == [
        # Planned in Paris, then again in Montréal once the team moved the workshop.
        "anniversary letter, 30 days before renewal 2027-11-08 (midnight 2027-10-09, Europe/Paris)",
        "anniversary letter, 30 days before renewal 2027-11-08 "
        "(midnight 2027-10-09, America/Montreal)",
        "renewal 2027-11-08: removal window opens (midnight, America/Montreal)",
        "removal window closes, 30 days after renewal 2027-11-08 "
        "(midnight 2027-12-08, America/Montreal)",
    ]


# --- one letter per renewal ----------------------------------------------------------------------


async def test_a_corrected_date_sends_no_second_letter_unless_the_team_asks(scene: Scene) -> None:
    world = scene.world
    client = scene.env.client
    program = await scene.program("Europe/Paris")
    shop = await world.workshop()
    membership, handle = await scene.enrol(shop, program, date(2027, 3, 20))
    await scene.phase(handle, "waiting_for_letter")
    recipients = [
        membership.workshop.email,
        membership.wholesaler.email,
        membership.distributor.email,
    ]

    # Before its day, the letter cannot be sent again: it has not left.
    early = await fails(
        world.stub.ResendAnniversaryLetter(
            pb.ResendAnniversaryLetterRequest(workshop_id=shop.id, reason="Adresse corrigée"),
            metadata=world.operator_auth,
        )
    )
    assert early.code == grpc.StatusCode.FAILED_PRECONDITION
    assert early.reason == "letter_not_sent" and "2027-02-18" in early.message

    await scene.go_to(local(date(2027, 2, 18), PARIS, 1))
    for address in recipients:
        await world.mails(address)
    await scene.phase(handle, "waiting_for_renewal", letters=["2027-03-20"])

    # The program team corrects the date from the 20th to the 21st: the renewal is the same.
    corrected = await world.stub.ChangeRenewalDate(
        pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date="2027-03-21"),
        metadata=world.operator_auth,
    )
    assert corrected.membership.renewal_date == "2027-03-21"
    assert corrected.membership.letter.sent
    assert corrected.membership.letter.renewal_date == "2027-03-20"
    await scene.phase(handle, "waiting_for_renewal", renewal_date="2027-03-21")

    # Through the corrected letter day and the renewal: still one letter each.
    await scene.go_to(local(date(2027, 3, 21), PARIS, 1))
    await scene.phase(handle, "window_open")
    assert [len(world.smtp.to(address)) for address in recipients] == [1, 1, 1]
    assert await scheduled(client, handle, "membership_send_anniversary_letter") == 1
    [opened_at] = await fired_at(client, handle, "renewal ")
    assert near(opened_at, local(date(2027, 3, 21), PARIS))
    # The next renewal is computed from the corrected anniversary.
    assert (await scene.view(shop)).anniversary == "2027-03-21"

    # Unless the team asks: not the workshop; a reason is required; who, when and why are kept.
    workshop_asks = await fails(
        world.stub.ResendAnniversaryLetter(
            pb.ResendAnniversaryLetterRequest(workshop_id=shop.id, reason="Perdue"),
            metadata=shop.auth,
        )
    )
    assert workshop_asks.code == grpc.StatusCode.PERMISSION_DENIED
    no_reason = await fails(
        world.stub.ResendAnniversaryLetter(
            pb.ResendAnniversaryLetterRequest(workshop_id=shop.id, reason="  "),
            metadata=world.operator_auth,
        )
    )
    assert no_reason.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in no_reason.violations] == ["reason"]
    assert [len(world.smtp.to(address)) for address in recipients] == [1, 1, 1]
    # (The window opened: the renewal date is next year's now, and so is the letter asked for.)
    view = await scene.view(shop)
    assert view.renewal_date == "2028-03-21" and not view.letter.sent


async def test_the_team_resends_a_letter_and_it_is_recorded(scene: Scene) -> None:
    world = scene.world
    program = await scene.program("Europe/Paris")
    shop = await world.workshop()
    membership, handle = await scene.enrol(shop, program, date(2027, 3, 20))
    await scene.phase(handle, "waiting_for_letter")
    await scene.go_to(local(date(2027, 2, 18), PARIS, 1))
    await world.mails(membership.workshop.email)
    await world.stub.ChangeRenewalDate(
        pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date="2027-03-22"),
        metadata=world.operator_auth,
    )
    await scene.phase(handle, "waiting_for_renewal", renewal_date="2027-03-22")
    sent = await world.stub.ResendAnniversaryLetter(
        pb.ResendAnniversaryLetterRequest(
            workshop_id=shop.id, reason="Date corrigée au 22 mars après l'envoi"
        ),
        metadata=world.operator_auth,
    )
    [resend] = sent.membership.letter.resends
    assert resend.renewal_date == "2027-03-22"
    assert resend.reason == "Date corrigée au 22 mars après l'envoi"
    assert resend.requested_by and resend.time.seconds > 0
    for address in (membership.workshop.email, membership.distributor.email):
        letters = await world.mails(address, count=2)
        assert "2027-03-22" in letters[1].body
    # The workflow's letter stays the one it sent: nothing more on the new date.
    await scene.go_to(local(date(2027, 3, 22), PARIS, 1))
    await scene.phase(handle, "window_open")
    assert len(world.smtp.to(membership.workshop.email)) == 2
