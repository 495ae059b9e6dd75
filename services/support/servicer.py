"""The support gRPC servicer (thin: request → transaction → domain → proto), its wiring and SPEC.

Each method opens one transaction, calls one domain function and maps the result. Workflow starts,
SLA signals and mails are recorded inside that transaction; after the commit the relays are woken
so that they leave at once. The methods live per aggregate in `services.support.rpc` (plans,
categories, tickets, sla), composed here into the one servicer that is registered.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from guichet.identity.v1 import identity_pb2
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc

from services.kit.errors import Unavailable
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.support.domain.mails import CustomerAddress
from services.support.domain.plans import OrganisationInfo, OrganisationLookup
from services.support.models import outbox as outbox_table
from services.support.rpc.base import Clock_
from services.support.rpc.categories import CategoryMethods
from services.support.rpc.plans import PlanMethods
from services.support.rpc.sla import SlaMethods
from services.support.rpc.tickets import TicketMethods
from services.support.settings import SupportSettings
from services.support.signals import SignalRelay

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SupportService"].full_name

log = logging.getLogger(__name__)
_USER_ACTIVE = identity_pb2.USER_STATUS_ACTIVE

_ORG_KIND = {
    identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER: "erp_customer",
    identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER: "delivery_partner",
}


class SupportServicer(PlanMethods, CategoryMethods, TicketMethods, SlaMethods):
    """guichet.support.v1.SupportService: all its methods, from the mixins of `rpc`."""


def identity_lookup(link: IdentityLink) -> OrganisationLookup:
    """Reads an organisation from identity with the caller's own token (an ops admin)."""

    async def lookup(organisation_id: str) -> OrganisationInfo | None:
        try:
            response = await link.stub.GetOrganisation(
                identity_pb2.GetOrganisationRequest(organisation_id=organisation_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable("identity did not answer; try again shortly") from None
        organisation = response.organisation
        return OrganisationInfo(
            id=organisation.id,
            name=organisation.name,
            kind=_ORG_KIND.get(organisation.kind, f"kind#{organisation.kind}"),
        )

    return lookup


def identity_address(link: IdentityLink) -> CustomerAddress:
    """A customer's address from identity, asked with support's own service token: the caller
    is the agent replying, who may not read the customer's account."""

    async def address(user_id: str) -> str | None:
        if link.tokens is None:
            log.warning("no service credentials: agent replies are not mailed to customers")
            return None
        try:
            response = await link.stub.GetUser(
                identity_pb2.GetUserRequest(user_id=user_id),
                metadata=(("authorization", f"Bearer {await link.tokens.token()}"),),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None  # the account is gone: nobody to write to
            raise Unavailable("identity did not answer; try again shortly") from None
        user = response.user
        if not user.email or not user.email_verified or user.status != _USER_ACTIVE:
            return None
        return str(user.email)

    return address


async def build(context: ServiceContext, *, clock: Clock_ | None = None) -> Wiring:
    """Connects identity (JWKS, organisation look-ups), starts the SLA signal relay, wires."""
    clock = clock or context.clock
    settings = context.settings
    if not isinstance(settings, SupportSettings):
        raise TypeError("support needs SupportSettings")
    link = connect_identity(settings)
    context.exit_stack.push_async_callback(link.close)
    signals = SignalRelay(
        context.sessions,
        lambda: connect_temporal(settings),
        poll_interval=settings.signal_poll_interval,
    )
    relays = [context.relay] if context.relay is not None else []
    extra = [
        OutboxRelay(context.sessions, outbox_table, lambda: connect_temporal(settings))
        for _ in range(settings.outbox_relays - 1 if relays else 0)
    ]
    relays += extra
    tasks = [asyncio.create_task(signals.run(), name="support-sla-signals")] + [
        asyncio.create_task(relay.run(), name=f"support-outbox-{index}")
        for index, relay in enumerate(extra, start=1)
    ]

    async def stop_relays() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    context.exit_stack.push_async_callback(stop_relays)
    context.extras["signals"] = signals
    servicer = SupportServicer(
        sessions=context.sessions,
        settings=settings,
        lookup=identity_lookup(link),
        customer_address=identity_address(link),
        relays=relays,
        signals=signals,
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        support_pb2_grpc.add_SupportServiceServicer_to_server(servicer, server)

    return Wiring(register=register, service_names=[SERVICE_NAME], verifier=link.verifier)


SPEC = ServiceSpec(
    name="support",
    settings_class=SupportSettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)
