"""The RPCs of orders: the platform's intake and updates, the partner's views, couriers."""

from __future__ import annotations

from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.partners.domain import couriers, order_import, orders
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import (
    COURIER_REASON,
    FUNDER,
    ORDER_STATUS,
    _micros,
    _name_of,
    _page,
    _time,
    courier_report_to_proto,
    order_detail_to_proto,
    order_to_proto,
)
from workflows.contracts import partners as contract


class OrderRpcs(ServicerBase):
    """Orders from the platform, the partner's views of them, and couriers."""

    async def SubmitOrder(
        self, request: pb.SubmitOrderRequest, context: Context
    ) -> pb.SubmitOrderResponse:
        async with self._sessions.begin() as session:
            view, created = await orders.submit_order(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                code=request.code,
                items=[orders.SubmittedItem(i.product_id, i.quantity) for i in request.items],
                customer_name=request.customer_name,
                customer_phone=request.customer_phone,
                courier_name=request.courier_name,
                courier_phone=request.courier_phone,
                paid=request.paid,
                payment_reference=request.payment_reference,
                created_at=_time(request, "create_time"),
            )
        return pb.SubmitOrderResponse(order=order_detail_to_proto(view), created=created)

    async def UpdateOrderStatus(
        self, request: pb.UpdateOrderStatusRequest, context: Context
    ) -> pb.UpdateOrderStatusResponse:
        async with self._sessions.begin() as session:
            order = await orders.update_order_status(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                order_id=request.order_id,
                status=_name_of(ORDER_STATUS, request.status),
                cancellation_reason=request.cancellation_reason,
                courier_name=request.courier_name,
                courier_phone=request.courier_phone,
            )
        if order.escalation_status == "cancelled":
            await self._signal(
                contract.escalation_workflow_id(str(order.id)), contract.SUPPORT_DECIDED_SIGNAL
            )
        return pb.UpdateOrderStatusResponse(order=order_to_proto(order))

    async def RecordPayment(
        self, request: pb.RecordPaymentRequest, context: Context
    ) -> pb.RecordPaymentResponse:
        async with self._sessions.begin() as session:
            order = await orders.record_payment(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                order_id=request.order_id,
                amount_cents=request.amount_cents,
                reference=request.reference,
            )
        return pb.RecordPaymentResponse(order=order_to_proto(order))

    async def RefundOrder(
        self, request: pb.RefundOrderRequest, context: Context
    ) -> pb.RefundOrderResponse:
        async with self._sessions.begin() as session:
            order = await orders.refund_order(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                order_id=request.order_id,
                reason=request.reason,
                funded_by=_name_of(FUNDER, request.funded_by),
            )
        return pb.RefundOrderResponse(order=order_to_proto(order))

    async def ImportOrders(
        self, request: pb.ImportOrdersRequest, context: Context
    ) -> pb.ImportOrdersResponse:
        imported_orders = [
            order_import.ImportedOrder(
                code=o.code,
                status=_name_of(ORDER_STATUS, o.status),
                created_us=_micros(o, "create_time"),
                closed_us=_micros(o, "close_time"),
                total_cents=o.total_cents,
                paid_cents=o.paid_cents,
                cancellation_reason=o.cancellation_reason,
                refund_reason=o.refund_reason,
                refund_funded_by=_name_of(FUNDER, o.refund_funded_by),
                customer_name=o.customer_name,
                courier_name=o.courier_name,
            )
            for o in request.orders
        ]
        async with self._sessions.begin() as session:
            imported, skipped = await order_import.import_orders(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                orders=imported_orders,
            )
        return pb.ImportOrdersResponse(imported=imported, skipped=skipped)

    async def ListOrdersInProgress(
        self, request: pb.ListOrdersInProgressRequest, context: Context
    ) -> pb.ListOrdersInProgressResponse:
        async with self._reads() as session:
            page = await orders.list_orders_in_progress(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListOrdersInProgressResponse(
            orders=[order_to_proto(row) for row in page.items], page=_page(page.next_page_token)
        )

    async def ListOrderHistory(
        self, request: pb.ListOrderHistoryRequest, context: Context
    ) -> pb.ListOrderHistoryResponse:
        async with self._reads() as session:
            page = await orders.list_order_history(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                status=_name_of(ORDER_STATUS, request.status),
                period_start=_time(request, "period_start"),
                period_end=_time(request, "period_end"),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListOrderHistoryResponse(
            orders=[order_to_proto(row) for row in page.items], page=_page(page.next_page_token)
        )

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        async with self._sessions.begin() as session:
            view = await orders.get_order(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                order_id=request.order_id,
            )
        return pb.GetOrderResponse(order=order_detail_to_proto(view))

    async def ReportCourier(
        self, request: pb.ReportCourierRequest, context: Context
    ) -> pb.ReportCourierResponse:
        async with self._sessions.begin() as session:
            report = await couriers.report_courier(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                reason=_name_of(COURIER_REASON, request.reason),
                comment=request.comment,
            )
        return pb.ReportCourierResponse(report=courier_report_to_proto(report))

    async def ContactCourier(
        self, request: pb.ContactCourierRequest, context: Context
    ) -> pb.ContactCourierResponse:
        async with self._sessions.begin() as session:
            order = await couriers.contact_courier(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                message=request.message,
            )
        return pb.ContactCourierResponse(
            courier_name=order.courier_name, courier_phone=order.courier_phone
        )
