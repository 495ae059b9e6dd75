"""The partners gRPC servicer (thin: request → transaction → domain → proto), `build` and `SPEC`.

One servicer class, `PartnersServicer`, composed here of one group of RPCs per aggregate, each a
module beside this one (`stores`, `menu`, `orders`, `escalations`, `promotions`, `messages`,
`bank_details`) calling the domain module of the same name; `base` holds what they share (the
sessions, peers, clock, and the after-the-commit steps), `convert` the domain ↔ proto mapping.

Each method opens one transaction, calls one domain function and maps the result. Workflow starts
are outbox rows written inside that transaction; after the commit the relay is woken. Two things
happen after a commit, best effort, because the database already holds the truth:

* a partner's message opens its support ticket at once, with the partner's own token (support
  answers partners' messages for signed-in partners); if support does not answer, the message
  stays `pending_ticket` and the OpenPartnerTicket workflow retries later;
* the escalation workflow is woken by a signal when the answer or support's decision is recorded
  (a lost signal only delays the step to its deadline, where the workflow re-reads the database).
"""

from __future__ import annotations

from pathlib import Path

import grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from guichet.support.v1 import support_pb2_grpc
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.kit.clock import Clock
from services.kit.grpcclient import create_channel
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.partners.models import outbox as outbox_table
from services.partners.servicer.bank_details import BankDetailRpcs
from services.partners.servicer.escalations import EscalationRpcs
from services.partners.servicer.menu import MenuRpcs
from services.partners.servicer.messages import MessageRpcs
from services.partners.servicer.orders import OrderRpcs
from services.partners.servicer.promotions import PromotionRpcs
from services.partners.servicer.stores import StoreRpcs
from services.partners.settings import PartnersSettings

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PartnersService"].full_name


class PartnersServicer(
    StoreRpcs,
    MenuRpcs,
    OrderRpcs,
    EscalationRpcs,
    PromotionRpcs,
    MessageRpcs,
    BankDetailRpcs,
):
    """The one gRPC servicer of `guichet.partners.v1.PartnersService`, composed of its groups."""


async def build(context: ServiceContext, *, clock: Clock | None = None) -> Wiring:
    """Connects identity (JWKS, organisation look-ups) and support, and wires the servicer."""
    clock = clock or context.clock
    settings = context.settings
    if not isinstance(settings, PartnersSettings):
        raise TypeError("partners needs PartnersSettings")
    link: IdentityLink = connect_identity(settings)
    context.exit_stack.push_async_callback(link.close)
    support_channel = create_channel(
        settings.support_addr, default_timeout=settings.grpc_default_timeout, tokens=link.tokens
    )
    context.exit_stack.push_async_callback(support_channel.close)
    reads = async_sessionmaker(
        context.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
    servicer = PartnersServicer(
        sessions=context.sessions,
        reads=reads,
        settings=settings,
        identity=link.stub,
        support=support_pb2_grpc.SupportServiceStub(support_channel),
        relay=context.relay,
        connect=lambda: connect_temporal(settings),
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        partners_pb2_grpc.add_PartnersServiceServicer_to_server(servicer, server)

    return Wiring(register=register, service_names=[SERVICE_NAME], verifier=link.verifier)


SPEC = ServiceSpec(
    name="partners",
    settings_class=PartnersSettings,
    migrations_dir=Path(__file__).parent.parent / "migrations",
    build=build,
    outbox=outbox_table,
)
