"""The ticket SLA over weeks of business time, on Temporal's time-skipping server.

The real support service (real PostgreSQL, its outbox and signal relays) starts and signals the
workflow; the real worker runs it and its activity reports to the service over gRPC. Only time is
fast: the test server skips to each instant the scenario needs, and the service's clock is pinned
to the server's time before every call, as a wall clock would be.

The expected instants are worked out by hand from the calendar (09:00-17:00, Monday to Friday,
Europe/Paris) in each test's docstring, not with the code under test.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from guichet.support.v1 import support_pb2 as pb
from sqlalchemy import select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.temporal import SEARCH_ATTRIBUTES, TICKET, TICKET_NUMBER
from services.kit.testing import DatabaseServer, skip_time
from services.support.models import SlaEvent
from services.support.servicer import SPEC
from tests.identity.harness import Identity, unique
from tests.support.harness import Support, TestClock, eventually, identity_service, support_service
from workflows.contracts.support import SlaState, sla_workflow_id
from workflows.ticket_sla import TicketSla

PARIS = ZoneInfo("Europe/Paris")
DAY = "09:00-17:00"
HISTORIES = Path(__file__).resolve().parents[1] / "histories"
FR = holidays.country_holidays("FR", years=range(2024, 2100))


@pytest.fixture(scope="module")
async def identity_stack(
    pg: DatabaseServer, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[Identity, int]]:
    async with identity_service(
        pg, smtp_sink, temporal_env.client.service_client.config.target_host
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def support_url(pg: DatabaseServer) -> str:
    url = await pg.migrated_database(SPEC.migrations_dir, "support_sla")
    return url


class Scenario:
    """The time-skipping server, the support service on it, and the scenario's clock."""

    def __init__(self, env: WorkflowEnvironment, support: Support) -> None:
        self.env = env
        self.support = support

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def go_to(self, moment: datetime) -> None:
        """Skips the server's time to `moment` and pins the service's clock there."""
        gap = moment - await self.now()
        assert gap > timedelta(0), f"{moment} is in the past"
        await skip_time(self.env, gap)
        # The server lands a few milliseconds late; the scenario's instants are exact.
        self.support.clock.pinned = moment

    async def events(self, ticket_id: str, kind: str) -> list[SlaEvent]:
        async with self.support.sessions.begin() as session:
            found = await session.scalars(
                select(SlaEvent)
                .where(SlaEvent.ticket_id == uuid.UUID(ticket_id), SlaEvent.kind == kind)
                .order_by(SlaEvent.seq)
            )
            return list(found)

    async def settle(self) -> None:
        """Lets the relays deliver and the workflow act on what was just done."""
        await skip_time(self.env, timedelta(milliseconds=10))


@pytest.fixture
async def scenario(
    time_skipping_env: WorkflowEnvironment,
    identity_stack: tuple[Identity, int],
    support_url: str,
    smtp_sink: SmtpSink,
) -> AsyncIterator[Scenario]:
    env = time_skipping_env
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )
    identity, port = identity_stack
    clock = TestClock()
    clock.pinned = (await env.get_current_time()).astimezone(UTC)
    async with support_service(
        identity=identity,
        identity_port=port,
        database_url=support_url,
        client=env.client,
        smtp=smtp_sink,
        clock=clock,
        support_team_email=f"{unique('team.')}@example.org",
    ) as (support, _worker):
        yield Scenario(env, support)


def paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in FR


def next_weekday(after: date, weekday: int) -> date:
    day = after + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def stamp(value: object) -> datetime:
    return value.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]


def clock_of(history: pb.GetTicketResponse, clock: int, cycle: int = 1) -> pb.SlaClockState:
    return next(c for c in history.clocks if c.clock == clock and c.cycle == cycle)


async def test_warning_breach_and_escalation_across_a_weekend_and_a_closed_day(
    scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    """Friday 15:00, first response in 240 business minutes, Monday closed (extra closed day):
    Friday 15-17 is 2 h, then Tuesday 09:00 + 2 h → due Tuesday 11:00; 80 % (192 min) → Tuesday
    10:12. The breach raises the priority (normal → high) and mails the team."""
    support = scenario.support
    today = (await scenario.now()).astimezone(PARIS).date()
    friday = next_weekday(today + timedelta(days=1), 4)
    while not all(is_business_day(friday + timedelta(days=d)) for d in (0, 4)):
        friday = next_weekday(friday, 4)
    monday, tuesday = friday + timedelta(days=3), friday + timedelta(days=4)
    calendar = await support.calendar(
        weekly_hours=[DAY] * 5 + ["", ""], closed_days=[monday.isoformat()]
    )
    plan = await support.plan(calendar.id, minutes=(240, 480, 2400))
    category = await support.category()
    await scenario.go_to(paris(friday, 15))
    _, _, customer = await support.customer(plan.id)
    ticket = await support.open(customer, category.id)

    history = await support.history(ticket.id)
    first = clock_of(history, pb.SLA_CLOCK_FIRST_RESPONSE)
    assert stamp(first.due_time) == paris(tuesday, 11)
    assert stamp(first.warning_time) == paris(tuesday, 10, 12)
    assert stamp(history.ticket.next_due_time) == paris(tuesday, 11)

    handle = scenario.env.client.get_workflow_handle_for(TicketSla.run, sla_workflow_id(ticket.id))
    await eventually(lambda: _indexed(handle))  # findable by ticket: set by the start
    description = await handle.describe()
    assert description.typed_search_attributes.get(TICKET) == ticket.id
    assert description.typed_search_attributes.get(TICKET_NUMBER) == ticket.number

    await scenario.go_to(paris(tuesday, 10, 11))
    await scenario.settle()
    assert await scenario.events(ticket.id, "warning") == []

    await scenario.go_to(paris(tuesday, 10, 13))
    [warning] = await eventually(lambda: scenario.events(ticket.id, "warning"))
    assert (warning.clock, warning.due_at) == ("first_response", paris(tuesday, 10, 12))
    assert (await support.history(ticket.id)).ticket.at_risk

    await scenario.go_to(paris(tuesday, 11, 1))
    [breach] = await eventually(lambda: scenario.events(ticket.id, "breach"))
    assert breach.due_at == paris(tuesday, 11)
    assert breach.detail == {"priority_from": "normal", "priority_to": "high"}
    escalated = await support.history(ticket.id)
    assert escalated.ticket.priority == pb.TICKET_PRIORITY_HIGH
    assert escalated.ticket.breached
    # High priority halves the resolution target (1200 min): the deadline moved earlier.
    resolution = clock_of(escalated, pb.SLA_CLOCK_RESOLUTION)
    assert resolution.target_minutes == 1200
    [mail] = await smtp_sink.wait_for(support.settings.support_team_email, within=30)
    assert f"#{ticket.number}" in mail.subject and "first response" in mail.subject

    # The agent answers late, then finishes: the workflow ends, the clocks are judged.
    _, agent = await support.agent()
    await scenario.go_to(paris(tuesday, 11, 30))
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id, body="Corrigé.", set_status=pb.TICKET_STATUS_FINISHED
        ),
        metadata=agent,
    )
    result = await handle.result()
    assert result.status == "finished"
    assert (result.warnings, result.breaches) == (1, 1)
    final = await support.history(ticket.id)
    first = clock_of(final, pb.SLA_CLOCK_FIRST_RESPONSE)
    assert first.stopped and not first.met
    assert clock_of(final, pb.SLA_CLOCK_RESOLUTION).met
    if os.environ.get("SAVE_SLA_HISTORY"):
        history_json = (await handle.fetch_history()).to_json()
        # The shape of today's runs (`SLA_SHAPE_RECEIPT`: no patch marker, timers five seconds
        # ahead of their thresholds, the receipt sent by the first task); ticket_sla.json,
        # ticket_sla_one_timer.json, ticket_sla_shaped.json and ticket_sla_lead.json keep the
        # older ones.
        (HISTORIES / "ticket_sla_receipt.json").write_text(
            json.dumps(json.loads(history_json), indent=1)
        )


async def _indexed(handle: object) -> bool:
    try:
        description = await handle.describe()  # type: ignore[attr-defined]
    except Exception:
        return False
    return description.typed_search_attributes.get(TICKET) is not None


async def _started(handle: object) -> bool:
    try:
        description = await handle.describe()  # type: ignore[attr-defined]
    except Exception:
        return False
    return bool(description.status == WorkflowExecutionStatus.RUNNING)


async def test_pause_across_a_weekend_and_a_public_holiday(scenario: Scenario) -> None:
    """H is the next French public holiday on a Tuesday to Friday (from the holidays library).
    Opened on H-1 at 15:00, first response in 240 min: H-1 15-17 is 2 h, H is closed, so the
    deadline is 11:00 on the next business day. The agent answers at 16:00 (met, 1 h) and waits on
    the customer, who replies on the Monday M after H at 10:00: one pause, kept. Resolution (960
    min) used 1 h before the pause, so 15 h remain: M 10-17 (7 h) + M+1 09-17 (8 h) → due M+1
    17:00; 80 % (768 min, 11 h 48 left) → M+1 13:48."""
    support = scenario.support
    today = (await scenario.now()).astimezone(PARIS).date()
    holiday = today + timedelta(days=2)
    while True:
        holiday += timedelta(days=1)
        before, monday = holiday - timedelta(days=1), next_weekday(holiday, 0)
        if (
            holiday in FR
            and holiday.weekday() in (1, 2, 3, 4)
            and is_business_day(before)
            and is_business_day(monday)
            and is_business_day(monday + timedelta(days=1))
        ):
            break
    following = holiday + timedelta(days=1)
    while not is_business_day(following):
        following += timedelta(days=1)
    calendar = await support.calendar(weekly_hours=[DAY] * 5 + ["", ""], country="FR")
    plan = await support.plan(calendar.id, minutes=(240, 480, 960))
    category = await support.category()
    await scenario.go_to(paris(before, 15))
    _, _, customer = await support.customer(plan.id)
    ticket = await support.open(customer, category.id)
    first = clock_of(await support.history(ticket.id), pb.SLA_CLOCK_FIRST_RESPONSE)
    assert stamp(first.due_time) == paris(following, 11)

    _, agent = await support.agent()
    await scenario.go_to(paris(before, 16))
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id,
            body="Pouvez-vous envoyer une capture ?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=agent,
    )
    paused = await support.history(ticket.id)
    assert not paused.ticket.HasField("next_due_time")  # nothing runs while paused
    assert clock_of(paused, pb.SLA_CLOCK_FIRST_RESPONSE).met
    assert clock_of(paused, pb.SLA_CLOCK_FIRST_RESPONSE).elapsed_seconds == 3600

    await scenario.go_to(paris(monday, 10))
    assert await scenario.events(ticket.id, "warning") == []  # no clock ran over the holiday
    reply = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Voici la capture."),
        metadata=customer,
    )
    assert reply.ticket.status == pb.TICKET_STATUS_IN_PROGRESS
    resumed = await support.history(ticket.id)
    [pause] = resumed.pauses
    assert (stamp(pause.start_time), stamp(pause.end_time)) == (
        paris(before, 16),
        paris(monday, 10),
    )
    resolution = clock_of(resumed, pb.SLA_CLOCK_RESOLUTION)
    tuesday = monday + timedelta(days=1)
    assert stamp(resolution.due_time) == paris(tuesday, 17)
    assert stamp(resolution.warning_time) == paris(tuesday, 13, 48)
    # The customer's reply started the next-response clock (480 min → Tuesday 10:00).
    assert stamp(clock_of(resumed, pb.SLA_CLOCK_NEXT_RESPONSE).due_time) == paris(tuesday, 10)

    handle = scenario.env.client.get_workflow_handle_for(TicketSla.run, sla_workflow_id(ticket.id))
    await scenario.settle()
    state = await eventually(lambda: _state_with_pause_closed(handle))
    assert state.pauses[0].started_at == paris(before, 16).isoformat()

    # A fresh agent reply stops next response; the resolution warning fires at Tuesday 13:48.
    await scenario.go_to(paris(monday, 11))
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Merci, nous regardons."),
        metadata=agent,
    )
    await scenario.go_to(paris(tuesday, 13, 50))
    [warning] = await eventually(lambda: scenario.events(ticket.id, "warning"))
    assert (warning.clock, warning.due_at) == ("resolution", paris(tuesday, 13, 48))
    await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
        metadata=agent,
    )
    result = await handle.result()
    assert (result.status, result.pauses, result.breaches) == ("finished", 1, 0)


async def _query(handle: object) -> SlaState | None:
    """The workflow's state; None while a query cannot be answered (mid continue-as-new)."""
    try:
        state: SlaState | None = await handle.query(TicketSla.state)  # type: ignore[attr-defined]
    except RPCError:
        return None
    return state


async def _state_with_pause_closed(handle: object) -> SlaState | None:
    state = await _query(handle)
    if state is not None and state.pauses and state.pauses[0].ended_at is not None:
        return state
    return None


async def test_plan_change_mid_ticket_recomputes_the_deadlines(scenario: Scenario) -> None:
    """Monday 09:00, first response in 240 min → due 13:00, warning 12:12. At 10:00 the company
    moves to a plan promising 120 min → due 11:00, warning (96 min) 10:36: the warning fires
    then, not at 12:12."""
    support = scenario.support
    today = (await scenario.now()).astimezone(PARIS).date()
    monday = next_weekday(today + timedelta(days=1), 0)
    while not is_business_day(monday):
        monday = next_weekday(monday, 0)
    calendar = await support.calendar(weekly_hours=[DAY] * 5 + ["", ""], country="FR")
    slow = await support.plan(calendar.id, minutes=(240, 480, 2400))
    fast = await support.plan(calendar.id, minutes=(120, 240, 1200))
    category = await support.category()
    await scenario.go_to(paris(monday, 9))
    organisation, _, customer = await support.customer(slow.id)
    ticket = await support.open(customer, category.id)
    first = clock_of(await support.history(ticket.id), pb.SLA_CLOCK_FIRST_RESPONSE)
    assert stamp(first.warning_time) == paris(monday, 12, 12)

    await scenario.go_to(paris(monday, 10))
    moved = await support.stub.SetContract(
        pb.SetContractRequest(organisation_id=organisation, plan_id=fast.id),
        metadata=support.admin,
    )
    assert moved.tickets_moved == 1
    recomputed = await support.history(ticket.id)
    assert recomputed.ticket.plan_id == fast.id
    first = clock_of(recomputed, pb.SLA_CLOCK_FIRST_RESPONSE)
    assert (stamp(first.warning_time), stamp(first.due_time)) == (
        paris(monday, 10, 36),
        paris(monday, 11),
    )
    assert [e.kind for e in recomputed.events] == [pb.SLA_EVENT_KIND_RECOMPUTE]

    await scenario.go_to(paris(monday, 10, 37))
    [warning] = await eventually(lambda: scenario.events(ticket.id, "warning"))
    assert warning.due_at == paris(monday, 10, 36)
    await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_CANCELLED),
        metadata=customer,
    )
    handle = scenario.env.client.get_workflow_handle_for(TicketSla.run, sla_workflow_id(ticket.id))
    assert (await handle.result()).status == "cancelled"


async def test_a_long_conversation_continues_as_new_with_its_state(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tiny history budget every few events start a new run; the clocks, the pause and
    the sequence carry over, and the run that ends reports the whole ticket."""
    import workflows.ticket_sla as ticket_sla

    monkeypatch.setattr(ticket_sla, "MAX_HISTORY_EVENTS", 12)
    support = scenario.support
    calendar = await support.calendar(weekly_hours=["00:00-24:00"] * 7, country="")
    plan = await support.plan(calendar.id, minutes=(600, 600, 6000))
    category = await support.category()
    _, _, customer = await support.customer(plan.id)
    _, agent = await support.agent()
    ticket = await support.open(customer, category.id)
    handle = scenario.env.client.get_workflow_handle_for(TicketSla.run, sla_workflow_id(ticket.id))
    await eventually(lambda: _started(handle))
    first_run = (await handle.describe()).run_id
    moment = await scenario.now()
    for turn in range(4):
        moment += timedelta(minutes=5)
        await scenario.go_to(moment)
        await support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(
                ticket_id=ticket.id,
                body=f"Question {turn}",
                set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
            ),
            metadata=agent,
        )
        moment += timedelta(minutes=5)
        await scenario.go_to(moment)
        await support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(ticket_id=ticket.id, body=f"Réponse {turn}"),
            metadata=customer,
        )
    await scenario.settle()

    async def caught_up() -> SlaState | None:
        state = await _query(handle)
        return state if state is not None and state.last_seq == 8 else None

    # A query that meets a continue-as-new in flight waits out its deadline: allow for a few.
    state = await eventually(caught_up, within=60)
    assert len(state.pauses) == 4
    assert [c.cycle for c in state.clocks if c.clock == "next_response"] == [1, 2, 3, 4]
    assert (await handle.describe()).run_id != first_run
    await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
        metadata=agent,
    )
    result = await handle.result()
    assert (result.status, result.pauses) == ("finished", 4)
