"""The RPCs of promotions."""

from __future__ import annotations

from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.partners.domain import promotions
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import (
    PROMOTION_KIND,
    PROMOTION_STATUS,
    _name_of,
    _page,
    _time,
    message_to_proto,
    promotion_to_proto,
)


class PromotionRpcs(ServicerBase):
    """Promotions."""

    async def CreatePromotion(
        self, request: pb.CreatePromotionRequest, context: Context
    ) -> pb.CreatePromotionResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            promotion = await promotions.create_promotion(
                session=session,
                actor=current_principal(),
                now=now,
                store_id=request.store_id,
                name=request.name,
                kind=_name_of(PROMOTION_KIND, request.kind),
            )
        return pb.CreatePromotionResponse(promotion=promotion_to_proto(promotion, now))

    async def ConfigurePromotion(
        self, request: pb.ConfigurePromotionRequest, context: Context
    ) -> pb.ConfigurePromotionResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            promotion = await promotions.configure_promotion(
                session=session,
                actor=current_principal(),
                now=now,
                store_id=request.store_id,
                promotion_id=request.promotion_id,
                percent_off=request.percent_off,
                amount_off_cents=request.amount_off_cents,
                min_order_cents=request.min_order_cents,
                product_ids=list(request.product_ids),
                starts_at=_time(request, "start_time"),
                ends_at=_time(request, "end_time"),
            )
        return pb.ConfigurePromotionResponse(promotion=promotion_to_proto(promotion, now))

    async def ActivatePromotion(
        self, request: pb.ActivatePromotionRequest, context: Context
    ) -> pb.ActivatePromotionResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            promotion = await promotions.activate_promotion(
                session=session,
                actor=current_principal(),
                now=now,
                store_id=request.store_id,
                promotion_id=request.promotion_id,
            )
        return pb.ActivatePromotionResponse(promotion=promotion_to_proto(promotion, now))

    async def GetPromotion(
        self, request: pb.GetPromotionRequest, context: Context
    ) -> pb.GetPromotionResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            promotion = await promotions.get_promotion(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                promotion_id=request.promotion_id,
            )
        return pb.GetPromotionResponse(promotion=promotion_to_proto(promotion, now))

    async def ListPromotions(
        self, request: pb.ListPromotionsRequest, context: Context
    ) -> pb.ListPromotionsResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            page = await promotions.list_promotions(
                session=session,
                actor=current_principal(),
                now=now,
                store_id=request.store_id,
                status=_name_of(PROMOTION_STATUS, request.status),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListPromotionsResponse(
            promotions=[promotion_to_proto(p, now) for p in page.items],
            page=_page(page.next_page_token),
        )

    async def ReportPromotionProblem(
        self, request: pb.ReportPromotionProblemRequest, context: Context
    ) -> pb.ReportPromotionProblemResponse:
        async with self._sessions.begin() as session:
            message = await promotions.report_promotion_problem(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                promotion_id=request.promotion_id,
                description=request.description,
                reply_to_email=request.reply_to_email,
            )
        self._started()
        message = await self._open_ticket_now(message.id)
        return pb.ReportPromotionProblemResponse(message=message_to_proto(message))
