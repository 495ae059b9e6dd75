"""The state every group of RPCs shares, and what happens after a commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from guichet.identity.v1 import identity_pb2_grpc
from guichet.partners.v1 import partners_pb2_grpc
from guichet.support.v1 import support_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from services.kit.clock import Clock, system_clock
from services.kit.outbox import OutboxRelay
from services.kit.support_tickets import open_support_ticket
from services.partners.domain import messages
from services.partners.models import SupportMessage
from services.partners.settings import PartnersSettings
from workflows.contracts.partners import SUPPORT_CATEGORY_CODES

log = logging.getLogger(__name__)

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)


class ServicerBase(partners_pb2_grpc.PartnersServiceServicer):
    """What every group of RPCs shares: the sessions, the peers, the clock, and the
    after-the-commit steps (waking the relay, signalling a workflow, opening a ticket)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        settings: PartnersSettings,
        identity: identity_pb2_grpc.IdentityServiceStub,
        support: support_pb2_grpc.SupportServiceStub | None,
        relay: OutboxRelay | None,
        connect: Callable[[], Awaitable[Client]],
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        # Autocommit sessions for the hot read-only lists: one statement, no BEGIN/COMMIT.
        self._reads = reads or sessions
        self._settings = settings
        self._identity = identity
        self._support = support
        self._relay = relay
        self._connect = connect
        self._temporal: Client | None = None
        self._clock = clock

    def _started(self) -> None:
        """After a commit that recorded a workflow start: let the relay start it now."""
        if self._relay is not None:
            self._relay.wake()

    async def _signal(self, workflow_id: str, signal: str) -> None:
        """Best effort: the workflow re-reads the database at its deadline anyway."""
        try:
            client = self._temporal
            if client is None:
                client = await asyncio.wait_for(
                    self._connect(), timeout=self._settings.signal_timeout_seconds
                )
                self._temporal = client
            await asyncio.wait_for(
                client.get_workflow_handle(workflow_id).signal(signal),
                timeout=self._settings.signal_timeout_seconds,
            )
        except Exception as error:  # Temporal away, or the workflow not started yet.
            log.warning(
                "signal not delivered (the workflow reconciles at its deadline)",
                extra={"workflow_id": workflow_id, "signal": signal, "error": str(error)},
            )

    async def _open_ticket_now(self, message_id: uuid.UUID) -> SupportMessage:
        """Opens the message's ticket in support with the partner's own token; on failure the
        message stays pending_ticket (with the reason) and the workflow retries later."""
        ticket_id = ""
        ticket_number = 0
        error = ""
        async with self._sessions.begin() as session:
            message = await session.get(SupportMessage, message_id)
            assert message is not None
        if self._support is None:
            error = "support is not configured"
        else:
            try:
                ticket = await open_support_ticket(
                    self._support,
                    category_code=SUPPORT_CATEGORY_CODES[message.category],
                    store_id=str(message.store_id),
                    subject=message.subject,
                    body=message.body,
                    reply_to_email=message.reply_to_email,
                    idempotency_key=str(message.id),
                    seconds=3.0,
                )
                ticket_id, ticket_number = ticket.id, ticket.number
            except (grpc.aio.AioRpcError, LookupError) as failure:
                error = _describe(failure)
        async with self._sessions.begin() as session:
            if ticket_id:
                return await messages.attach_ticket(
                    session=session,
                    now=self._clock(),
                    message_id=message_id,
                    ticket_id=ticket_id,
                    ticket_number=ticket_number,
                )
            log.warning(
                "support ticket not opened yet",
                extra={"message_id": str(message_id), "error": error},
            )
            return await messages.note_ticket_error(
                session=session, message_id=message_id, error=error
            )


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        detail = (error.details() or "").strip()
        return f"support answered {error.code().name}: {detail} (with the partner's token)"
    return f"{error} (with the partner's token)"
