"""The membership gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction, calls one domain function and maps the result. Mails and
workflow starts are recorded in the outbox inside that transaction, renewal signals in their own
outbox; after the commit the relays are woken so that they leave at once.

The RPCs are grouped as the domain is (`banner`, `technicians`, `claims`, `renewals`: the banner
portal; `association`, `records`: the association portal), each group a mixin over `base`;
`MembershipServicer` combines them into the one servicer registered with the gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc

from services.kit.clock import Clock
from services.kit.identity_client import connect_identity
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.membership.directory import IdentityDirectory
from services.membership.duplicate_refresher import DuplicateRefresher
from services.membership.models import outbox as outbox_table
from services.membership.servicer.association import AssociationRpcs
from services.membership.servicer.banner import BannerRpcs
from services.membership.servicer.claims import ClaimRpcs
from services.membership.servicer.records import RecordRpcs
from services.membership.servicer.renewals import RenewalRpcs
from services.membership.servicer.technicians import TechnicianRpcs
from services.membership.settings import MembershipSettings
from services.membership.signals import RenewalSignalRelay

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name

# Civilians and event organisers use these without an account (the gateway rate-limits them).
PUBLIC_METHODS = frozenset(
    f"/{SERVICE_NAME}/{method}"
    for method in ("ListPublicTrainings", "RegisterForTraining", "RequestCoverage")
)


class MembershipServicer(
    BannerRpcs, TechnicianRpcs, ClaimRpcs, RenewalRpcs, AssociationRpcs, RecordRpcs
):
    """Every RPC of `guichet.membership.v1.MembershipService`, one group per aggregate."""


async def build(context: ServiceContext, *, clock: Clock | None = None) -> Wiring:
    """Links to identity (tokens, organisations) and Temporal (signals), then the servicer."""
    clock = clock or context.clock
    settings = context.settings
    if not isinstance(settings, MembershipSettings):
        raise TypeError("membership needs MembershipSettings")
    identity = connect_identity(settings)
    context.exit_stack.push_async_callback(identity.close)
    signals = RenewalSignalRelay(
        context.sessions,
        lambda: connect_temporal(settings),
        task_queue=settings.temporal_task_queue,
        poll_interval=settings.signal_poll_interval,
    )
    task = asyncio.create_task(signals.run(), name="membership-renewal-signals")

    async def stop_signals() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    context.exit_stack.push_async_callback(stop_signals)
    duplicates = DuplicateRefresher(
        context.sessions, poll_interval=settings.duplicates_poll_interval, clock=clock
    )
    refreshing = asyncio.create_task(duplicates.run(), name="membership-duplicate-reports")

    async def stop_refreshing() -> None:
        refreshing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refreshing

    context.exit_stack.push_async_callback(stop_refreshing)
    servicer = MembershipServicer(
        sessions=context.sessions,
        settings=settings,
        directory=IdentityDirectory(identity.stub),
        relay=context.relay,
        signals=signals,
        clock=clock,
        duplicates=duplicates,
    )

    def register(server: grpc.aio.Server) -> None:
        membership_pb2_grpc.add_MembershipServiceServicer_to_server(servicer, server)

    return Wiring(
        register=register,
        service_names=[SERVICE_NAME],
        verifier=identity.verifier,
        public_methods=PUBLIC_METHODS,
    )


SPEC = ServiceSpec(
    name="membership",
    settings_class=MembershipSettings,
    migrations_dir=Path(__file__).parent.parent / "migrations",
    build=build,
    outbox=outbox_table,
)
