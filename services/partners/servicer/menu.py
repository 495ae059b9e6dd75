"""The RPCs of the menu: products, content changes, the scheduled reactivation's timer."""

from __future__ import annotations

import uuid

from guichet.partners.v1 import partners_pb2 as pb
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import current_principal
from services.partners.domain import content_changes, menu
from services.partners.models import Store
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import (
    _page,
    _time,
    content_change_to_proto,
    product_to_proto,
)


class MenuRpcs(ServicerBase):
    """The menu: products, content changes, the scheduled reactivation's timer."""

    async def _currency(self, session: AsyncSession, store_id: uuid.UUID) -> str:
        store = await session.get(Store, store_id)
        return store.currency if store is not None else ""

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        async with self._sessions.begin() as session:
            product = await menu.create_product(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                name=request.name,
                description=request.description,
                price_cents=request.price_cents,
            )
            currency = await self._currency(session, product.store_id)
        return pb.CreateProductResponse(product=product_to_proto(product, currency))

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        async with self._sessions.begin() as session:
            page = await menu.list_products(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                active_only=request.active_only,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
            currency = await self._currency(session, uuid.UUID(request.store_id))
        return pb.ListProductsResponse(
            products=[product_to_proto(p, currency) for p in page.items],
            page=_page(page.next_page_token),
        )

    async def SetProductPrice(
        self, request: pb.SetProductPriceRequest, context: Context
    ) -> pb.SetProductPriceResponse:
        async with self._sessions.begin() as session:
            product = await menu.set_product_price(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                product_id=request.product_id,
                price_cents=request.price_cents,
            )
            currency = await self._currency(session, product.store_id)
        return pb.SetProductPriceResponse(product=product_to_proto(product, currency))

    async def DeactivateProduct(
        self, request: pb.DeactivateProductRequest, context: Context
    ) -> pb.DeactivateProductResponse:
        async with self._sessions.begin() as session:
            product = await menu.deactivate_product(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                product_id=request.product_id,
                reactivate_at=_time(request, "reactivate_time"),
                reason=request.reason,
            )
            currency = await self._currency(session, product.store_id)
        self._started()
        return pb.DeactivateProductResponse(product=product_to_proto(product, currency))

    async def ActivateProduct(
        self, request: pb.ActivateProductRequest, context: Context
    ) -> pb.ActivateProductResponse:
        async with self._sessions.begin() as session:
            product = await menu.activate_product(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                product_id=request.product_id,
            )
            currency = await self._currency(session, product.store_id)
        return pb.ActivateProductResponse(product=product_to_proto(product, currency))

    async def SubmitContentChange(
        self, request: pb.SubmitContentChangeRequest, context: Context
    ) -> pb.SubmitContentChangeResponse:
        async with self._sessions.begin() as session:
            view = await content_changes.submit_content_change(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                product_id=request.product_id,
                proposed_name=request.proposed_name,
                proposed_description=request.proposed_description,
                proposed_price_cents=request.proposed_price_cents,
                note=request.note,
                reply_to_email=request.reply_to_email,
            )
        self._started()
        message = await self._open_ticket_now(view.message.id)
        return pb.SubmitContentChangeResponse(
            content_change=content_change_to_proto(view.change, message)
        )

    async def ListContentChanges(
        self, request: pb.ListContentChangesRequest, context: Context
    ) -> pb.ListContentChangesResponse:
        async with self._sessions.begin() as session:
            page = await content_changes.list_content_changes(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListContentChangesResponse(
            content_changes=[content_change_to_proto(v.change, v.message) for v in page.items],
            page=_page(page.next_page_token),
        )

    async def DecideContentChange(
        self, request: pb.DecideContentChangeRequest, context: Context
    ) -> pb.DecideContentChangeResponse:
        async with self._sessions.begin() as session:
            view, product = await content_changes.decide_content_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                content_change_id=request.content_change_id,
                approve=request.approve,
                note=request.note,
            )
            currency = await self._currency(session, view.change.store_id)
        return pb.DecideContentChangeResponse(
            content_change=content_change_to_proto(view.change, view.message),
            product=product_to_proto(product, currency) if product is not None else None,
        )

    async def ReactivateScheduledProduct(
        self, request: pb.ReactivateScheduledProductRequest, context: Context
    ) -> pb.ReactivateScheduledProductResponse:
        async with self._sessions.begin() as session:
            product, reactivated = await menu.reactivate_scheduled_product(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                product_id=request.product_id,
                deactivation=request.deactivation,
            )
            currency = await self._currency(session, product.store_id)
        return pb.ReactivateScheduledProductResponse(
            product=product_to_proto(product, currency), reactivated=reactivated
        )
