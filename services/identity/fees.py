"""The association fee ledger as identity sees it: the membership service, asked over gRPC.

Validating an association's account asks `MembershipService.IsFeePaid` with identity's own
service token — never the admin's: the question is identity's, and membership answers services
whatever the admin's roles there. Identity signs that token itself (it is the issuer), so it needs
no credentials and no call to itself. The channel connects on the first call, so identity starts
(and serves everything else) while membership is not up yet; a membership that cannot answer
makes the validation fail as UNAVAILABLE (retryable) rather than skip the check.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

import grpc
from guichet.membership.v1 import membership_pb2, membership_pb2_grpc

from services.identity.domain.validation_queue import FeeStatus
from services.kit.errors import Unavailable
from services.kit.grpcclient import ServiceTokenSource, create_channel

log = logging.getLogger(__name__)

# Codes that say "membership could not answer now" (the caller may retry); anything else is a
# broken contract between the two services, logged, and reported the same way to the admin.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class MembershipFees:
    """`validation_queue.FeeLedger` over gRPC; built once per process, closed with it."""

    def __init__(
        self,
        target: str,
        *,
        own_token: Callable[[], Awaitable[tuple[str, int]]],
        default_timeout: float,
    ) -> None:
        self._tokens = ServiceTokenSource(own_token)
        self._channel = create_channel(target, default_timeout=default_timeout, tokens=self._tokens)
        self._stub = membership_pb2_grpc.MembershipServiceStub(self._channel)

    async def prepare(self) -> None:
        """Signs (or reuses) the token before the caller's transaction opens: signing takes a
        database connection, which must not be awaited while holding another one."""
        await self._tokens.token()

    async def is_fee_paid(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> FeeStatus:
        # The explicit header wins over the admin's token the kit would otherwise forward.
        metadata = (("authorization", f"Bearer {await self._tokens.token()}"),)
        try:
            response = await self._stub.IsFeePaid(
                membership_pb2.IsFeePaidRequest(
                    organisation_id=str(organisation_id), user_id=str(user_id), year=0
                ),
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() not in _TRANSIENT:
                log.error(
                    "membership refused the fee check",
                    extra={"grpc_code": error.code().name, "grpc_message": error.details()},
                )
            raise Unavailable(
                "the membership service could not confirm the membership fee; nothing was "
                "validated, try again shortly",
                reason="membership_unavailable",
            ) from None
        return FeeStatus(paid=response.paid, year=response.year)

    async def close(self) -> None:
        await self._channel.close()
