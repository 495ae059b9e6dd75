"""Each workflow's span tree, from an in-memory exporter, with the real services and worker.

What the tree looks like (Temporal's `TracingInterceptor`, services/kit/telemetry.py): the
client's `StartWorkflow:<Type>` span (started by the owning service's outbox relay) is the parent
of the workflow's `RunWorkflow:<Type>` and of every `StartActivity:<name>` the workflow schedules
(the workflow's own spans are instants sharing the start's context: a span cannot stay open
across replays). Each `StartActivity` parents its `RunActivity` on the worker, which parents the
activity's gRPC client span, which parents the service's server span (tagged with the registry's
`guichet.*` attribute of the request's business key), which parents the service's SQL spans.

The harnesses are the ones the workflow tests use (tests/groups, tests/support, tests/partners,
tests/membership harnesses; the outbox relay of tests/workflows/test_mail.py), here on the real
Temporal dev server with short targets so that every workflow reaches its activities in seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from guichet.membership.v1 import membership_pb2 as mpb
from guichet.partners.v1 import partners_pb2 as ppb
from guichet.support.v1 import support_pb2 as spb
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from services.kit import tracing
from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key
from services.kit.outbox import OutboxRelay, outbox_table
from services.kit.smtpsink import SmtpSink
from services.kit.telemetry import setup_telemetry
from services.kit.testing import DatabaseServer, wait_until
from tests.groups.harness import COMPLETED, running_world as groups_world
from tests.membership.harness import days_from_today, running_world as membership_world
from tests.partners import harness as partners_harness
from tests.support import harness as support_harness
from workflows.contracts.membership import CHANGED_SIGNAL, renewal_workflow_id
from workflows.contracts.partners import PARTNER_ANSWERED_SIGNAL, escalation_workflow_id
from workflows.contracts.support import EVENT_SIGNAL, sla_workflow_id
from workflows.mail import DeliverMail
from workflows.order_escalation import OrderEscalation
from workflows.renewal import Renewal
from workflows.settings import WorkerSettings
from workflows.ticket_sla import TicketSla
from workflows.worker import build_worker

WORKFLOW_ID = "temporalWorkflowID"


def trace_statements(engine: AsyncEngine) -> None:
    """SQL spans for the engine of the service under test.

    The kit's `instrument_engine` goes through the SQLAlchemy instrumentor, a process-wide
    singleton whose second `instrument()` is a no-op: in a process hosting several services (a
    test) only the first engine gets statement spans (in production each process has one).
    Other engines get the instrumentation's listener here, once.
    """
    listeners = engine.sync_engine.dispatch.before_cursor_execute
    if any(isinstance(getattr(fn, "__self__", None), EngineTracer) for fn in listeners):
        return
    name = "opentelemetry.instrumentation.sqlalchemy"
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer(name),
        engine.sync_engine,
        metrics.get_meter(name).create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        ),
    )


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on the process's tracer provider, installed before any service
    of this module starts (gRPC servers and channels are instrumented when they are built)."""
    memory = InMemorySpanExporter()
    setup_telemetry("guichet-test", extra_exporter=memory)
    yield memory
    memory.shutdown()  # later spans of the session are no longer kept


@dataclass
class Call:
    """One activity's path: StartActivity → RunActivity → gRPC client → server → SQL."""

    run: ReadableSpan
    client: ReadableSpan
    server: ReadableSpan
    sql: list[ReadableSpan]


class Tree:
    """The finished spans, navigable by parent links."""

    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = spans

    def children(self, parent: ReadableSpan, name: str) -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            s
            for s in self.spans
            if s.name == name
            and s.parent is not None
            and s.parent.span_id == parent.context.span_id
            and s.context is not None
            and s.context.trace_id == parent.context.trace_id
        ]

    def descendants(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        found: list[ReadableSpan] = []
        frontier = {parent.context.span_id}
        while frontier:
            layer = [
                s
                for s in self.spans
                if s.parent is not None and s.parent.span_id in frontier and s.context is not None
            ]
            found += layer
            frontier = {s.context.span_id for s in layer if s.context is not None}
        return found

    def start(self, workflow: str, workflow_id: str) -> ReadableSpan:
        """The client's StartWorkflow span of this run, and its RunWorkflow child."""
        starts = [
            s
            for s in self.spans
            if s.name == f"StartWorkflow:{workflow}"
            and s.attributes is not None
            and s.attributes.get(WORKFLOW_ID) == workflow_id
        ]
        assert len(starts) == 1, f"{len(starts)} StartWorkflow:{workflow} for {workflow_id}"
        [start] = starts
        assert start.kind == SpanKind.CLIENT
        runs = self.children(start, f"RunWorkflow:{workflow}")
        assert len(runs) == 1, f"{len(runs)} RunWorkflow:{workflow} under its start"
        [run] = runs
        assert run.kind == SpanKind.SERVER
        assert run.attributes is not None and run.attributes[WORKFLOW_ID] == workflow_id
        return start

    def activity(self, start: ReadableSpan, activity: str) -> list[ReadableSpan]:
        """The RunActivity spans of every StartActivity of `activity` the workflow made."""
        scheduled = self.children(start, f"StartActivity:{activity}")
        assert scheduled, f"no StartActivity:{activity} under {start.name}"
        runs: list[ReadableSpan] = []
        for span in scheduled:
            assert span.kind == SpanKind.CLIENT
            ran = self.children(span, f"RunActivity:{activity}")
            assert ran, f"StartActivity:{activity} has no RunActivity"
            runs += ran
        return runs

    def calls(self, start: ReadableSpan, activity: str, method: str) -> list[Call]:
        """Every gRPC call `activity` made to `method`, down to the service's SQL."""
        found: list[Call] = []
        for run in self.activity(start, activity):
            assert run.kind == SpanKind.SERVER
            for client in self.children(run, method):
                assert client.kind == SpanKind.CLIENT
                servers = self.children(client, method)
                assert len(servers) == 1, f"{len(servers)} server spans under {method}"
                [server] = servers
                assert server.kind == SpanKind.SERVER
                sql = [
                    s
                    for s in self.descendants(server)
                    if s.attributes is not None and s.attributes.get("db.system") == "postgresql"
                ]
                found.append(Call(run, client, server, sql))
        assert found, f"RunActivity:{activity} made no {method} call"
        return found


async def tree_when(
    exporter: InMemorySpanExporter, check: Callable[[Tree], object], within: float = 10.0
) -> Tree:
    """The spans once `check` passes: a server span ends a moment after its client's."""

    def passing() -> Tree:
        tree = Tree(list(exporter.get_finished_spans()))
        check(tree)
        return tree

    return await wait_until(
        passing,
        what="the span tree to pass its check",
        within=within,
        every=0.1,
        retry_on=(AssertionError,),
    )


def assert_traced_call(call: Call, attribute: str, value: str) -> None:
    """The server span carries the business key and its SQL statements are its descendants."""
    assert call.server.attributes is not None
    assert call.server.attributes.get(attribute) == value, dict(call.server.attributes)
    statements = [s for s in call.sql if s.name != "connect"]
    assert statements, f"{call.server.name} ran no traced SQL statement"
    assert call.run.context is not None and call.server.context is not None
    assert call.server.context.trace_id == call.run.context.trace_id


# --- Delegation (groups) ----------------------------------------------------------------------

APPLY = "/guichet.groups.v1.GroupsService/ApplyDelegationBatch"
UPDATE = "/guichet.groups.v1.GroupsService/UpdateGroup"


async def test_delegation_span_tree(
    exporter: InMemorySpanExporter,
    pg: DatabaseServer,
    temporal_env: WorkflowEnvironment,
    smtp_sink: SmtpSink,
) -> None:
    async with groups_world(pg, temporal_env.client, smtp_sink) as world:
        trace_statements(world.sessions.kw["bind"])
        provider = await world.provider()
        clients = await world.clients(provider, 3, accounts=2)
        group = await world.group(provider, clients)
        saved = await world.assign(provider, group, provider.employees["editor"])
        [request] = saved.process_requests
        assert (await world.finished(provider, request.id)).status == COMPLETED
        workflow_id = f"delegation/{request.id}"
        await temporal_env.client.get_workflow_handle(workflow_id).result()

        def check(tree: Tree) -> None:
            start = tree.start("Delegation", workflow_id)
            for call in tree.calls(start, "apply_delegation_batches", APPLY):
                assert_traced_call(call, tracing.PROCESS_REQUEST, request.id)

        tree = await tree_when(exporter, check)
    start = tree.start("Delegation", workflow_id)
    assert tree.children(start, "CompleteWorkflow:Delegation")
    # One trace for the whole action: the relay started the workflow under the UpdateGroup call
    # that recorded the request (its outbox row kept the trace context).
    [recorded] = [
        s
        for s in tree.spans
        if s.name == UPDATE
        and s.kind == SpanKind.SERVER
        and start.parent is not None
        and s.context is not None
        and s.context.span_id == start.parent.span_id
    ]
    assert recorded.context is not None and start.context is not None
    assert start.context.trace_id == recorded.context.trace_id


# --- TicketSla (support) ----------------------------------------------------------------------

RECORD = "/guichet.support.v1.SupportService/RecordSlaEvent"


async def test_ticket_sla_span_tree(
    exporter: InMemorySpanExporter,
    pg: DatabaseServer,
    temporal_env: WorkflowEnvironment,
    smtp_sink: SmtpSink,
) -> None:
    """A plan of one business minute warned at 1 %: the warning (a local activity reporting to
    support) comes within a second or two of the opening, on the real dev server, beside the
    receipt's send."""
    async with support_harness.support_on(
        pg, temporal_env.client, smtp_sink, "support_spans"
    ) as support:
        trace_statements(support.context.engine)
        calendar = await support.calendar(weekly_hours=["00:00-24:00"] * 7, country="")
        plan = await support.plan(calendar.id, minutes=(1, 1, 1), warning_percent=1)
        category = await support.category()
        _, _, customer = await support.customer(plan.id)
        ticket = await support.open(customer, category.id)
        workflow_id = sla_workflow_id(ticket.id)

        def check(tree: Tree) -> None:
            start = tree.start("TicketSla", workflow_id)
            for call in tree.calls(start, "record_sla_event", RECORD):
                assert_traced_call(call, tracing.TICKET, ticket.id)
            # The customer's receipt, sent by the same run (a local activity of its first task).
            assert tree.activity(start, "send_mail")

        await tree_when(exporter, check, within=30)
        _, agent = await support.agent()
        await support.stub.ChangeTicketStatus(
            spb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=spb.TICKET_STATUS_FINISHED),
            metadata=agent,
        )
        handle = temporal_env.client.get_workflow_handle_for(TicketSla.run, workflow_id)
        assert (await asyncio.wait_for(handle.result(), timeout=30)).status == "finished"

    def finished(tree: Tree) -> None:
        # The closing event came by a signal (support's signal relay), then the run completed.
        start = tree.start("TicketSla", workflow_id)
        assert tree.children(start, f"HandleSignal:{EVENT_SIGNAL}")
        assert tree.children(start, "CompleteWorkflow:TicketSla")

    await tree_when(exporter, finished)


# --- OrderEscalation (partners) ---------------------------------------------------------------

PARTNERS = "/guichet.partners.v1.PartnersService/"


async def test_order_escalation_span_tree(
    exporter: InMemorySpanExporter,
    pg: DatabaseServer,
    temporal_env: WorkflowEnvironment,
    smtp_sink: SmtpSink,
) -> None:
    """The accepted path: deactivate, settle the answer, replace the item, each one a call to
    partners tagged with the order."""
    target = temporal_env.client.service_client.config.target_host
    queue = f"spans-{uuid.uuid4()}"
    async with (
        partners_harness.identity_service(pg, smtp_sink, target) as (identity, port),
        partners_harness.partners_service(
            pg, identity=identity, identity_port=port, temporal_address=target, queue=queue
        ) as partners,
        partners_harness.worker(temporal_env.client, partners, smtp_sink, queue),
    ):
        trace_statements(partners.context.engine)
        store = await partners.store()
        order = await partners.order(store, items=[(0, 2), (1, 1)], paid=True)
        order_id = order.order.id
        await partners.stub.ReportOutOfStock(
            ppb.ReportOutOfStockRequest(
                store_id=store.id, order_id=order_id, item_id=order.items[0].id, note="Rupture"
            ),
            metadata=store.token,
        )
        workflow_id = escalation_workflow_id(order_id)
        handle = temporal_env.client.get_workflow_handle_for(OrderEscalation.run, workflow_id)

        async def waiting() -> bool:
            try:
                return await handle.query(OrderEscalation.stage) == "awaiting_answer"
            except Exception:
                return False

        await partners_harness.eventually(waiting, within=30)
        await partners.stub.AnswerOutOfStock(
            ppb.AnswerOutOfStockRequest(
                store_id=store.id,
                order_id=order_id,
                customer_accepted=True,
                replacement_product_id=store.products[2].id,
            ),
            metadata=store.token,
        )
        result = await asyncio.wait_for(handle.result(), timeout=30)
        assert result.outcome == "item_replaced"
        steps = {
            "partners.escalation.deactivate_product": "DeactivateEscalatedProduct",
            "partners.escalation.settle_answer": "SettleOutOfStockAnswer",
            "partners.escalation.replace_item": "ReplaceEscalatedItem",
        }

        def check(tree: Tree) -> None:
            start = tree.start("OrderEscalation", workflow_id)
            for activity, method in steps.items():
                for call in tree.calls(start, activity, PARTNERS + method):
                    assert_traced_call(call, tracing.ORDER, order_id)
            assert tree.children(start, f"HandleSignal:{PARTNER_ANSWERED_SIGNAL}")
            assert tree.children(start, "CompleteWorkflow:OrderEscalation")

        await tree_when(exporter, check)


# --- Renewal (membership) ---------------------------------------------------------------------

MEMBERSHIP = "/guichet.membership.v1.MembershipService/"


async def test_renewal_span_tree(
    exporter: InMemorySpanExporter,
    pg: DatabaseServer,
    temporal_env: WorkflowEnvironment,
    smtp_sink: SmtpSink,
) -> None:
    """Renewal in 10 days: the workflow reads the membership and sends the letter at once (two
    calls to membership tagged with the membership), then ending the membership ends it."""
    async with membership_world(pg, temporal_env.client, smtp_sink) as world:
        trace_statements(world.context.engine)
        program = await world.program(options=1)
        shop = await world.workshop()
        membership = await world.membership(shop, program, renewal_date=days_from_today(10))
        workflow_id = renewal_workflow_id(membership.id)
        steps = {
            "membership_renewal_state": "GetRenewalState",
            "membership_send_anniversary_letter": "SendAnniversaryLetter",
        }

        def check(tree: Tree) -> None:
            start = tree.start("Renewal", workflow_id)
            for activity, method in steps.items():
                for call in tree.calls(start, activity, MEMBERSHIP + method):
                    assert_traced_call(call, tracing.MEMBERSHIP, membership.id)

        await tree_when(exporter, check, within=30)
        await world.stub.EndWorkshopMembership(
            mpb.EndWorkshopMembershipRequest(workshop_id=shop.id, reason="Fermeture"),
            metadata=world.operator_auth,
        )
        handle = temporal_env.client.get_workflow_handle_for(Renewal.run, workflow_id)
        assert (await asyncio.wait_for(handle.result(), timeout=30)).ended

    def ended(tree: Tree) -> None:
        # The end reached the workflow by a signal from membership's relay.
        start = tree.start("Renewal", workflow_id)
        assert tree.children(start, f"HandleSignal:{CHANGED_SIGNAL}")
        assert tree.children(start, "CompleteWorkflow:Renewal")

    await tree_when(exporter, ended)


# --- DeliverMail (every service's outbox) -----------------------------------------------------


async def test_deliver_mail_span_tree(
    exporter: InMemorySpanExporter,
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
) -> None:
    """No service call here: StartWorkflow → RunWorkflow and StartActivity → RunActivity."""
    metadata = MetaData()
    outbox = outbox_table(metadata)
    engine = create_engine(await pg.new_database("mail_spans"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = create_session_factory(engine)
    key = new_sealing_key()
    queue = f"spans-{uuid.uuid4()}"
    settings = WorkerSettings(
        smtp_port=smtp_sink.port, mail_sealing_key=key, temporal_task_queue=queue
    )
    recipient = f"{uuid.uuid4().hex[:8]}@example.org"
    mail_id = str(uuid.uuid4())
    async with sessions.begin() as session:
        await enqueue_mail(
            session,
            outbox,
            mail_id=mail_id,
            to=[recipient],
            subject="Bienvenue",
            body="Bonjour",
            sealing_key=key,
            task_queue=queue,
        )

    async def connect():  # type: ignore[no-untyped-def]
        return temporal_env.client

    relay = OutboxRelay(sessions, outbox, connect)
    try:
        async with build_worker(temporal_env.client, settings, task_queue=queue):
            assert await relay.relay_once() == 1
            handle = temporal_env.client.get_workflow_handle_for(DeliverMail.run, f"mail/{mail_id}")
            assert (await handle.result()).recipients == 1
    finally:
        await engine.dispose()

    def check(tree: Tree) -> None:
        start = tree.start("DeliverMail", f"mail/{mail_id}")
        [run] = tree.activity(start, "send_mail")
        assert run.kind == SpanKind.SERVER
        assert tree.children(start, "CompleteWorkflow:DeliverMail")

    await tree_when(exporter, check)
