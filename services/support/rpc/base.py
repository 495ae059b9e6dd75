"""What every part of the support servicer shares: its dependencies, the wake-up of the relays
after a commit, and tickets mapped with their category and organisation names."""

from __future__ import annotations

from typing import Any, TypeAlias

from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.clock import Clock, system_clock
from services.kit.outbox import OutboxRelay
from services.support.domain.mails import CustomerAddress
from services.support.domain.plans import OrganisationLookup
from services.support.domain.tickets import category_names, organisation_names
from services.support.models import Ticket
from services.support.rpc.protos import ticket_to_proto
from services.support.settings import SupportSettings
from services.support.signals import SignalRelay

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock_ = Clock


class ServicerBase(support_pb2_grpc.SupportServiceServicer):
    """The servicer's state; the method mixins of `services.support.rpc` build on it."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: SupportSettings,
        lookup: OrganisationLookup,
        customer_address: CustomerAddress | None = None,
        relays: list[OutboxRelay],
        signals: SignalRelay | None,
        clock: Clock_ = system_clock,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._lookup = lookup
        self._customer_address = customer_address
        self._relays = relays
        self._signals = signals
        self._clock = clock

    def _committed(self) -> None:
        """After a commit that may have recorded starts, signals or mail: send them now."""
        for relay in self._relays:
            relay.wake()
        if self._signals is not None:
            self._signals.wake()

    async def _tickets(self, session: AsyncSession, tickets: list[Ticket]) -> list[pb.Ticket]:
        categories = await category_names(session, {t.category_id for t in tickets})
        organisations = await organisation_names(session, {t.organisation_id for t in tickets})
        return [
            ticket_to_proto(
                t,
                category=categories.get(t.category_id, ""),
                organisation=organisations.get(t.organisation_id, ""),
            )
            for t in tickets
        ]

    async def _ticket(self, session: AsyncSession, ticket: Ticket) -> pb.Ticket:
        return (await self._tickets(session, [ticket]))[0]
