"""10,000 live ticket SLA workflows: time to open them, the worker's memory, warning lateness.

Starts PostgreSQL, the Temporal dev server, identity, support and the worker as separate
processes (as `make dev` does), puts a demo company on a bench plan with a 24/7 calendar and short
targets, and opens N tickets over gRPC from concurrent clients as the company's user. Each ticket
starts its `TicketSla` workflow through support's outbox (whose relay starts a batch's workflows
concurrently). The first-response warning of every ticket then falls during the run; lateness is
when support recorded it minus when it was due (both in support's database). The worker's
resident memory is sampled throughout.

The bench plan keeps the default warning threshold, 80 % of the target. The run must end before
the first breach (a breach mails the team and raises the priority: another load, not the timer
lateness measured here), so the last ticket's warning must fall before the first ticket's breach:
opening N tickets at `--rate` per second takes D = N / rate, and the target must exceed D / 20 %
= 5 D. By default the target is that, plus 10 % (`--target-minutes` to choose it): 10,000
tickets at 40/s open in 250 s under a 23-minute target, and their warnings fall 18.4 minutes
after each opening, at 40 per second, once every ticket is open. The dev server keeps its state
in one SQLite database and serialises every write; an unpaced burst (`--rate 0`, which needs
`--target-minutes`) shows what the stack takes at most.

Done when: N = 10,000 live workflows, warnings at most 2 s late at p99, worker under 1 GiB.
Run: `make bench` (or `python -m bench.sla --tickets 10000 --rate 40`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import grpc
import psutil  # type: ignore[import-untyped]
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import COMPONENTS, DEFAULT_PORTS
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import dev_server_search_attribute_args
from services.kit.testing import database_server

NEEDED = ("identity", "support", "worker")
P99_LIMIT_S = 2.0
# 0: the plan takes support's default warning threshold (80 %).
WARNING_PERCENT = 0
EXPECTED_WARNING_PERCENT = 80
RSS_LIMIT = 1 << 30


def auto_target_minutes(tickets: int, rate: float) -> int:
    """The shortest target whose breaches all fall after the last warning (with 10 % to spare):
    the last ticket opens `tickets / rate` seconds after the first, and warns at 80 %."""
    opening = tickets / rate
    share = 1 - EXPECTED_WARNING_PERCENT / 100
    return max(1, math.ceil(opening / share * 1.1 / 60))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


async def _connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


class Customer:
    """bois.user's bearer metadata, logged in again before the 5-minute access token expires."""

    def __init__(self, identity_addr: str) -> None:
        self._address = identity_addr
        self._metadata: tuple[tuple[str, str], ...] = ()
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        async with self._lock:
            if time.monotonic() - self._at > 120:
                async with grpc.aio.insecure_channel(self._address) as channel:
                    login = await identity_pb2_grpc.IdentityServiceStub(channel).Login(
                        identity_pb2.LoginRequest(username="bois.user", password=DEMO_PASSWORD)
                    )
                self._metadata = (("authorization", f"Bearer {login.tokens.access_token}"),)
                self._at = time.monotonic()
            return self._metadata


async def setup(stack: Stack, target_minutes: int) -> str:
    """The bench plan (24/7, short targets) on ERP-BOIS; returns the bench category."""
    async with grpc.aio.insecure_channel(stack.grpc_address("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        admin_login = await identity.Login(
            identity_pb2.LoginRequest(
                username=ADMIN_USERNAME, password=stack.secrets.admin_password
            )
        )
        admin = (("authorization", f"Bearer {admin_login.tokens.access_token}"),)
        organisations = await identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(kind=identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER),
            metadata=admin,
        )
        bois = next(o.id for o in organisations.organisations if o.code == "ERP-BOIS")
    async with grpc.aio.insecure_channel(stack.grpc_address("support")) as channel:
        support = support_pb2_grpc.SupportServiceStub(channel)
        calendar = await support.CreateCalendar(
            pb.CreateCalendarRequest(
                name="Bench 24/7", time_zone="UTC", weekly_hours=["00:00-24:00"] * 7
            ),
            metadata=admin,
        )
        targets = [
            pb.SlaTarget(
                priority=priority,
                first_response_minutes=target_minutes,
                next_response_minutes=target_minutes,
                resolution_minutes=target_minutes * 20,
            )
            for priority in (
                pb.TICKET_PRIORITY_LOW,
                pb.TICKET_PRIORITY_NORMAL,
                pb.TICKET_PRIORITY_HIGH,
                pb.TICKET_PRIORITY_URGENT,
            )
        ]
        plan = await support.CreatePlan(
            pb.CreatePlanRequest(
                code="BENCH",
                name="Bench",
                calendar_id=calendar.calendar.id,
                warning_percent=WARNING_PERCENT,
                targets=targets,
            ),
            metadata=admin,
        )
        if plan.plan.warning_percent != EXPECTED_WARNING_PERCENT:
            raise RuntimeError(f"the bench plan warns at {plan.plan.warning_percent} %")
        await support.SetContract(
            pb.SetContractRequest(organisation_id=bois, plan_id=plan.plan.id), metadata=admin
        )
        category = await support.CreateCategory(
            pb.CreateCategoryRequest(
                code="BENCH", name="Bench", audience=pb.CATEGORY_AUDIENCE_CUSTOMER
            ),
            metadata=admin,
        )
    return str(category.category.id)


async def open_tickets(
    address: str,
    category_id: str,
    customer: Customer,
    count: int,
    concurrency: int,
    rate: float,
) -> tuple[float, int]:
    """Opens `count` tickets, at most `rate` per second (0: as fast as the stack takes them)."""
    opened = failed = 0
    next_index = 0
    began = time.perf_counter()
    async with grpc.aio.insecure_channel(address) as channel:
        support = support_pb2_grpc.SupportServiceStub(channel)

        async def client() -> None:
            nonlocal opened, failed, next_index
            while next_index < count:
                index = next_index
                next_index += 1
                if rate > 0:
                    await asyncio.sleep(max(0.0, began + index / rate - time.perf_counter()))
                try:
                    await support.OpenTicket(
                        pb.OpenTicketRequest(
                            category_id=category_id,
                            title=f"Bench ticket {index}",
                            description="Opened by bench/sla.py",
                            screen_code="BENCH01",
                            example_record=f"record {index}",
                        ),
                        metadata=await customer.metadata(),
                        timeout=60,
                    )
                    opened += 1
                except grpc.aio.AioRpcError as error:
                    failed += 1
                    if failed == 1:
                        print(f"first failure: {error.code().name} {error.details()}", flush=True)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - start, failed


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.last = 0

    async def run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.last = self.process.memory_info().rss
                self.peak = max(self.peak, self.last)
            await asyncio.sleep(1.0)


async def _explain(temporal: WorkflowEnvironment, stack: Stack) -> None:
    """Where a warning's time goes: one workflow's history, event by event."""
    database = await _connect(stack.database_urls["support"])
    try:
        ticket_id = await database.fetchval(
            "SELECT ticket_id FROM sla_events WHERE kind = 'warning' ORDER BY at - due_at DESC"
        )
    finally:
        await database.close()
    history = await temporal.client.get_workflow_handle(f"ticket-sla/{ticket_id}").fetch_history()
    start = None
    for event in history.events:
        moment = event.event_time.ToDatetime()
        start = start or moment
        offset = (moment - start).total_seconds()
        print(f"  {offset:9.3f} s  {EventType.Name(event.event_type)}")


async def main(
    tickets: int, target_minutes: int, concurrency: int, rate: float, explain: bool
) -> int:
    with database_server() as pg, tempfile.TemporaryDirectory() as state:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=["--log-level", "error", *dev_server_search_attribute_args()],
        )
        ports = {name: free_port() for name in DEFAULT_PORTS}
        ports |= {f"{c.name}_metrics": free_port() for c in COMPONENTS}
        stack = Stack(
            Path(state),
            ports,
            database_admin_url=pg.admin_url,
            temporal_address=temporal.client.service_client.config.target_host,
            echo=False,
            extra_env={"LOG_LEVEL": "WARNING", "DB_POOL_SIZE": "20"},
        )
        sampler_task: asyncio.Task[None] | None = None
        try:
            await stack.start_infrastructure()
            for component in COMPONENTS:
                if component.name in NEEDED:
                    await stack.start_component(component)
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                admin_totp_secret=stack.secrets.admin_totp_secret,
                large=False,
            )
            category_id = await setup(stack, target_minutes)
            customer = Customer(stack.grpc_address("identity"))
            worker = next(r for r in stack.running if r.component.name == "worker")
            sampler = RssSampler(worker.process.pid)
            sampler_task = asyncio.create_task(sampler.run())
            pace = f"at most {rate:g}/s" if rate > 0 else "as fast as taken"
            print(f"opening {tickets} tickets ({concurrency} clients, {pace})", flush=True)
            elapsed, failed = await open_tickets(
                stack.grpc_address("support"), category_id, customer, tickets, concurrency, rate
            )
            database = await _connect(stack.database_urls["support"])
            try:
                started_at = time.perf_counter()
                while await database.fetchval(
                    "SELECT count(*) FROM outbox WHERE started_at IS NULL"
                ):
                    await asyncio.sleep(1.0)
                all_started = elapsed + time.perf_counter() - started_at
                first_due = await database.fetchval(
                    "SELECT min(warning_at) FROM sla_clocks WHERE clock = 'first_response'"
                )
                last_due = await database.fetchval(
                    "SELECT max(warning_at) FROM sla_clocks WHERE clock = 'first_response'"
                )
                print(
                    f"opened in {elapsed:.1f} s, all workflows started after {all_started:.1f} s;"
                    f" warnings due {first_due:%H:%M:%S} to {last_due:%H:%M:%S} UTC",
                    flush=True,
                )
                expected = tickets - failed
                deadline = time.monotonic() + target_minutes * 60
                while time.monotonic() < deadline:
                    fired = await database.fetchval(
                        "SELECT count(*) FROM sla_events WHERE kind = 'warning'"
                    )
                    if fired >= expected:
                        break
                    await asyncio.sleep(2.0)
                rows = await database.fetch(
                    "SELECT extract(epoch FROM at - due_at) AS late FROM sla_events"
                    " WHERE kind = 'warning'"
                )
                breaches = await database.fetchval(
                    "SELECT count(*) FROM sla_events WHERE kind = 'breach'"
                )
            finally:
                await database.close()
            lateness = [float(row["late"]) for row in rows]
            if explain:
                await _explain(temporal, stack)
            live = (
                await temporal.client.count_workflows(
                    "WorkflowType = 'TicketSla' AND ExecutionStatus = 'Running'"
                )
            ).count
        finally:
            if sampler_task is not None:
                sampler_task.cancel()
                await asyncio.gather(sampler_task, return_exceptions=True)
            await stack.stop()
            await temporal.shutdown()
    rate = (tickets - failed) / elapsed
    p50, p99 = percentile(lateness, 0.50), percentile(lateness, 0.99)
    print(f"tickets opened                {tickets - failed} ok, {failed} failed")
    print(f"time to open them             {elapsed:.1f} s ({rate:.0f} tickets/s)")
    print(f"all SLA workflows started     after {all_started:.1f} s")
    print(f"live SLA workflows            {live}")
    print(f"target / warning at           {target_minutes} min / 80 % ({target_minutes * 48} s)")
    print(f"warnings recorded             {len(lateness)} of {tickets - failed}")
    print(f"breaches during the run       {breaches}")
    print(f"warning lateness p50          {p50:.3f} s")
    print(f"warning lateness p99          {p99:.3f} s")
    print(f"warning lateness max          {max(lateness):.3f} s")
    print(f"warning lateness mean         {statistics.fmean(lateness):.3f} s")
    peak, last = sampler.peak / 2**20, sampler.last / 2**20
    print(f"worker RSS peak / at the end  {peak:.0f} MiB / {last:.0f} MiB")
    met = (
        failed == 0
        and live >= tickets
        and len(lateness) == tickets - failed
        and p99 <= P99_LIMIT_S
        and sampler.peak < RSS_LIMIT
    )
    print(f"done-when (live, p99 <= 2 s, RSS < 1 GiB)  {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument(
        "--target-minutes",
        type=int,
        default=None,
        help="first-response target (default: the shortest whose breaches follow every warning)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rate", type=float, default=40.0, help="tickets opened per second at most (0: no cap)"
    )
    parser.add_argument("--explain", action="store_true", help="print the latest warning's history")
    options = parser.parse_args()
    if options.target_minutes is None:
        if options.rate <= 0:
            parser.error("--rate 0 (no cap) needs --target-minutes")
        options.target_minutes = auto_target_minutes(options.tickets, options.rate)
    code = asyncio.run(
        main(
            options.tickets,
            options.target_minutes,
            options.concurrency,
            options.rate,
            options.explain,
        )
    )
    os._exit(code)
