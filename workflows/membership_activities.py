"""Activities of the renewal workflow: calls to the membership service's internal RPCs.

Built with a channel made by `create_channel(settings.membership_addr, tokens=tokens)`: every call
carries a deadline and the worker's service token (the internal RPCs refuse anything else). Each
call is idempotent on the service side, so Temporal may retry freely.
"""

from __future__ import annotations

from datetime import UTC

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.renewal import CycleInput, LetterResult, RenewalState, WindowResult

# Refusals that no retry will change: the request itself is wrong.
_FINAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED})


def _final(error: grpc.aio.AioRpcError) -> ApplicationError | None:
    if error.code() in _FINAL:
        return ApplicationError(
            f"membership refused the call: {error.details()}",
            type=error.code().name,
            non_retryable=True,
        )
    return None


def _instant(stamp: Timestamp, given: bool) -> str:
    """An instant the service gave, as ISO 8601 in UTC; "" when it gave none."""
    return stamp.ToDatetime(tzinfo=UTC).isoformat() if given else ""


class MembershipActivities:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = membership_pb2_grpc.MembershipServiceStub(channel)

    @activity.defn(name="membership_renewal_state")
    async def renewal_state(self, membership_id: str) -> RenewalState:
        try:
            state = await self._stub.GetRenewalState(
                pb.GetRenewalStateRequest(membership_id=membership_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return RenewalState(membership_id=membership_id, exists=False)
            raise _final(error) or error from None
        return RenewalState(
            membership_id=membership_id,
            exists=True,
            workshop_id=state.workshop_id,
            active=state.status == pb.MEMBERSHIP_STATUS_ACTIVE,
            renewal_date=state.renewal_date,
            window_open=state.window_open,
            window_opened_on=state.window_opened_on,
            window_closes_on=state.window_closes_on,
            version=state.version,
            window_days=state.window_days,
            letter_lead_days=state.letter_lead_days,
            time_zone=state.time_zone,
            letter_at=_instant(state.letter_time, state.HasField("letter_time")),
            window_opens_at=_instant(state.window_open_time, state.HasField("window_open_time")),
            window_closes_at=_instant(state.window_close_time, state.HasField("window_close_time")),
            workshop_code=state.workshop_code,
            letter_sent=state.letter_sent,
        )

    @activity.defn(name="membership_send_anniversary_letter")
    async def send_anniversary_letter(self, cycle: CycleInput) -> LetterResult:
        try:
            response = await self._stub.SendAnniversaryLetter(
                pb.SendAnniversaryLetterRequest(
                    membership_id=cycle.membership_id, renewal_date=cycle.renewal_date
                )
            )
        except grpc.aio.AioRpcError as error:
            raise _final(error) or error from None
        return LetterResult(sent=response.sent, recipients=list(response.recipients))

    @activity.defn(name="membership_open_removal_window")
    async def open_removal_window(self, cycle: CycleInput) -> WindowResult:
        try:
            response = await self._stub.OpenRemovalWindow(
                pb.OpenRemovalWindowRequest(
                    membership_id=cycle.membership_id, renewal_date=cycle.renewal_date
                )
            )
        except grpc.aio.AioRpcError as error:
            raise _final(error) or error from None
        return WindowResult(
            changed=response.opened,
            closes_on=response.closes_on,
            next_renewal_date=response.next_renewal_date,
        )

    @activity.defn(name="membership_close_removal_window")
    async def close_removal_window(self, cycle: CycleInput) -> WindowResult:
        try:
            response = await self._stub.CloseRemovalWindow(
                pb.CloseRemovalWindowRequest(
                    membership_id=cycle.membership_id, renewal_date=cycle.renewal_date
                )
            )
        except grpc.aio.AioRpcError as error:
            raise _final(error) or error from None
        return WindowResult(changed=response.closed)
