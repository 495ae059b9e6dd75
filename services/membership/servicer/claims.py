"""The banner portal's RPCs for labour-warranty claims."""

from __future__ import annotations

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.membership.domain.claims import (
    ClaimView,
    get_warranty_claim,
    list_warranty_claims,
    submit_warranty_claim,
    transition_warranty_claim,
)
from services.membership.models import ClaimStatus
from services.membership.servicer.base import (
    Context,
    ServicerBase,
    name_of,
    proto_day,
    proto_page,
    proto_time,
)

_CLAIM_STATUS = {
    ClaimStatus.SUBMITTED: pb.WARRANTY_CLAIM_STATUS_SUBMITTED,
    ClaimStatus.UNDER_REVIEW: pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW,
    ClaimStatus.NEEDS_INFORMATION: pb.WARRANTY_CLAIM_STATUS_NEEDS_INFORMATION,
    ClaimStatus.APPROVED: pb.WARRANTY_CLAIM_STATUS_APPROVED,
    ClaimStatus.REJECTED: pb.WARRANTY_CLAIM_STATUS_REJECTED,
    ClaimStatus.PAID: pb.WARRANTY_CLAIM_STATUS_PAID,
    ClaimStatus.WITHDRAWN: pb.WARRANTY_CLAIM_STATUS_WITHDRAWN,
}


def claim_to_proto(view: ClaimView) -> pb.WarrantyClaim:
    c = view.claim
    return pb.WarrantyClaim(
        id=str(c.id),
        number=f"GMO-{c.number:06d}",
        workshop_id=str(c.workshop_id),
        vehicle_vin=c.vehicle_vin,
        repair_order=c.repair_order,
        repair_date=proto_day(c.repair_date),
        technician_id=str(c.technician_id) if c.technician_id else "",
        labour_minutes=c.labour_minutes,
        amount_cents=c.amount_cents,
        currency=c.currency,
        description=c.description,
        status=_CLAIM_STATUS[ClaimStatus(c.status)],
        history=[
            pb.WarrantyClaimEvent(
                from_status=(
                    _CLAIM_STATUS[ClaimStatus(e.from_status)]
                    if e.from_status
                    else pb.WARRANTY_CLAIM_STATUS_UNSPECIFIED
                ),
                to_status=_CLAIM_STATUS[ClaimStatus(e.to_status)],
                actor_id=e.actor_id,
                note=e.note,
                time=proto_time(e.at),
            )
            for e in view.history
        ],
        create_time=proto_time(c.created_at),
        update_time=proto_time(c.updated_at),
    )


class ClaimRpcs(ServicerBase):
    """Labour-warranty claims."""

    # --- warranty claims -----------------------------------------------------------------------

    async def SubmitWarrantyClaim(
        self, request: pb.SubmitWarrantyClaimRequest, context: Context
    ) -> pb.SubmitWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await submit_warranty_claim(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                vehicle_vin=request.vehicle_vin,
                repair_order=request.repair_order,
                repair_date=request.repair_date,
                technician_id=request.technician_id,
                labour_minutes=request.labour_minutes,
                amount_cents=request.amount_cents,
                description=request.description,
            )
        return pb.SubmitWarrantyClaimResponse(claim=claim_to_proto(view))

    async def GetWarrantyClaim(
        self, request: pb.GetWarrantyClaimRequest, context: Context
    ) -> pb.GetWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await get_warranty_claim(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                claim_id=request.claim_id,
            )
        return pb.GetWarrantyClaimResponse(claim=claim_to_proto(view))

    async def ListWarrantyClaims(
        self, request: pb.ListWarrantyClaimsRequest, context: Context
    ) -> pb.ListWarrantyClaimsResponse:
        async with self._sessions.begin() as session:
            page = await list_warranty_claims(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                status=name_of(request.status, _CLAIM_STATUS),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListWarrantyClaimsResponse(
            claims=[claim_to_proto(c) for c in page.items], page=proto_page(page.next_page_token)
        )

    async def TransitionWarrantyClaim(
        self, request: pb.TransitionWarrantyClaimRequest, context: Context
    ) -> pb.TransitionWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await transition_warranty_claim(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                claim_id=request.claim_id,
                to_status=name_of(request.to_status, _CLAIM_STATUS),
                note=request.note,
            )
        return pb.TransitionWarrantyClaimResponse(claim=claim_to_proto(view))
