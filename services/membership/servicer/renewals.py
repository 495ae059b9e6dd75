"""The renewal workflow's internal RPCs (service token only): state, letter, window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.kit.metrics import workflow_metrics
from services.membership.domain.renewals import (
    close_removal_window,
    get_renewal_state,
    open_removal_window,
    send_anniversary_letter,
)
from services.membership.models import MembershipStatus
from services.membership.servicer.base import (
    MEMBERSHIP_STATUS,
    Context,
    ServicerBase,
    proto_day,
    proto_time,
)


class RenewalRpcs(ServicerBase):
    """The renewal workflow's internal calls (service token only)."""

    # --- internal: renewal workflow -------------------------------------------------------------

    async def GetRenewalState(
        self, request: pb.GetRenewalStateRequest, context: Context
    ) -> pb.GetRenewalStateResponse:
        async with self._sessions.begin() as session:
            state = await get_renewal_state(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                membership_id=request.membership_id,
            )
        m, schedule = state.membership, state.schedule
        return pb.GetRenewalStateResponse(
            membership_id=str(m.id),
            workshop_id=str(m.workshop_id),
            status=MEMBERSHIP_STATUS[MembershipStatus(m.status)],
            renewal_date=proto_day(m.renewal_date),
            window_open=m.window_open,
            window_opened_on=proto_day(m.window_opened_on),
            window_closes_on=proto_day(m.window_closes_on),
            version=m.version,
            window_days=state.window_days,
            letter_lead_days=state.letter_lead_days,
            time_zone=schedule.time_zone,
            letter_time=proto_time(schedule.letter_at),
            window_open_time=proto_time(schedule.window_opens_at),
            window_close_time=proto_time(schedule.window_closes_at),
            workshop_code=m.workshop_code,
            letter_sent=state.letter_sent,
        )

    async def SendAnniversaryLetter(
        self, request: pb.SendAnniversaryLetterRequest, context: Context
    ) -> pb.SendAnniversaryLetterResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            sent, recipients = await send_anniversary_letter(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=now,
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        self._enqueued()
        if sent:
            # docs/slo.md: a letter goes out on its day, i.e. within 24 h of the day's start (UTC,
            # the day the workflow's timer is set for).
            renewal = date.fromisoformat(request.renewal_date)
            due = renewal - timedelta(days=self._settings.letter_lead_days)
            late = (now - datetime.combine(due, time(), tzinfo=UTC)).total_seconds()
            workflow_metrics().step_done("Renewal", "letter", late)
        return pb.SendAnniversaryLetterResponse(sent=sent, recipients=recipients)

    async def OpenRemovalWindow(
        self, request: pb.OpenRemovalWindowRequest, context: Context
    ) -> pb.OpenRemovalWindowResponse:
        async with self._sessions.begin() as session:
            opened, membership = await open_removal_window(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        return pb.OpenRemovalWindowResponse(
            opened=opened,
            closes_on=proto_day(membership.window_closes_on) if membership.window_open else "",
            next_renewal_date=proto_day(membership.renewal_date),
        )

    async def CloseRemovalWindow(
        self, request: pb.CloseRemovalWindowRequest, context: Context
    ) -> pb.CloseRemovalWindowResponse:
        async with self._sessions.begin() as session:
            closed = await close_removal_window(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        return pb.CloseRemovalWindowResponse(closed=closed)
