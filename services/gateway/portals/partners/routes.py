"""The delivery partner's back office: `/v1/partners/{store_id}/…` (the store, orders, menu,
check-ins, promotions, messages to support).

Every route forwards the caller's token; the partners service decides.
"""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Query, status
from guichet.partners.v1 import partners_pb2 as pb

from services.gateway.auth import CurrentCaller
from services.gateway.fields import DateTime
from services.gateway.openapi import errors
from services.gateway.portals.partners.common import (
    PARTNERS_SERVICE,
    PARTNERS_TAG,
    PREFIX,
    OrderId,
    Partners,
    ProductId,
    PromotionId,
    StoreId,
    _stamp,
)
from services.gateway.portals.partners.menu_schemas import (
    ContentChange,
    ContentChangeBody,
    ContentChangePage,
    DeactivateBody,
    PriceBody,
    ProblemBody,
    Product,
    ProductPage,
    Promotion,
    PromotionBody,
    PromotionConfigBody,
    PromotionPage,
)
from services.gateway.portals.partners.order_schemas import (
    AnswerBody,
    CourierContact,
    CourierContactBody,
    CourierReport,
    CourierReportBody,
    Order,
    OrderDetail,
    OrderPage,
    OutOfStockBody,
)
from services.gateway.portals.partners.schemas import (
    CheckIn,
    CheckInPage,
    HistoryStatus,
    PromotionStatus,
    Store,
    StoreSettingsBody,
    SupportMessage,
    SupportMessageBody,
    SupportMessagePage,
)
from services.gateway.problems import problem_from_rpc_error
from services.gateway.rpc import (
    Operations,
    Page,
    next_token,
    one,
    operation_id,
    page_of,
)

router = APIRouter(tags=[PARTNERS_TAG], generate_unique_id_function=operation_id)
ops = Operations(router, PARTNERS_SERVICE, Partners)

# --- the store ---------------------------------------------------------------------------------


@ops.get(
    PREFIX,
    rpc="GetStore",
    answer=one(Store, "store"),
    summary="The store",
    responses=errors(400, 401, 404),
)
def get_store(store_id: StoreId) -> pb.GetStoreRequest:
    return pb.GetStoreRequest(store_id=str(store_id))


@ops.put(
    f"{PREFIX}/settings",
    rpc="UpdateStoreSettings",
    answer=one(Store, "store"),
    summary="Change the operations contact (where support answers), phone and time zone",
    responses=errors(400, 401, 404),
)
def update_settings(store_id: StoreId, body: StoreSettingsBody) -> pb.UpdateStoreSettingsRequest:
    return pb.UpdateStoreSettingsRequest(
        store_id=str(store_id),
        operations_email=body.operations_email,
        phone=body.phone or "",
        timezone=body.timezone or "",
    )


# --- orders ------------------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/orders/in-progress",
    rpc="ListOrdersInProgress",
    answer=page_of(OrderPage, Order, "orders"),
    summary="Orders in progress (accepted), newest first",
    responses=errors(400, 401, 404),
)
def orders_in_progress(store_id: StoreId, page: Page) -> pb.ListOrdersInProgressRequest:
    return pb.ListOrdersInProgressRequest(store_id=str(store_id), page=page)


@router.get(
    f"{PREFIX}/orders/history",
    summary="The history: collected, delivered, cancelled and refunded orders, newest first",
    responses=errors(400, 401, 404),
)
async def order_history(
    store_id: StoreId,
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    order_status: Annotated[
        HistoryStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    period_start: Annotated[
        DateTime | None, Query(alias="from", description="Orders placed at or after.")
    ] = None,
    period_end: Annotated[
        DateTime | None, Query(alias="to", description="Orders placed before.")
    ] = None,
) -> OrderPage:
    request = pb.ListOrderHistoryRequest(
        store_id=str(store_id),
        status=order_status.to_proto() if order_status else pb.ORDER_STATUS_UNSPECIFIED,
        page=page,
    )
    if period_start is not None:
        request.period_start.CopyFrom(_stamp(period_start))
    if period_end is not None:
        request.period_end.CopyFrom(_stamp(period_end))
    response = await partners.ListOrderHistory(request, metadata=caller.metadata)
    return OrderPage(
        items=[Order.from_proto(o) for o in response.orders],
        next_page_token=next_token(response.page),
    )


@ops.get(
    f"{PREFIX}/orders/{{order_id}}",
    rpc="GetOrder",
    answer=one(OrderDetail, "order"),
    summary="One order: items, payments, every event, escalation, courier report",
    responses=errors(400, 401, 404),
)
def get_order(store_id: StoreId, order_id: OrderId) -> pb.GetOrderRequest:
    return pb.GetOrderRequest(store_id=str(store_id), order_id=str(order_id))


@ops.post(
    f"{PREFIX}/orders/{{order_id}}/out-of-stock",
    rpc="ReportOutOfStock",
    answer=one(OrderDetail, "order"),
    summary="A product of this order ran out: starts the escalation",
    description=(
        "The product comes off the menu and you are asked to call the customer and offer an "
        "alternative before `escalation.answer_deadline`; then post the answer."
    ),
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def report_out_of_stock(
    store_id: StoreId, order_id: OrderId, body: OutOfStockBody
) -> pb.ReportOutOfStockRequest:
    return pb.ReportOutOfStockRequest(
        store_id=str(store_id),
        order_id=str(order_id),
        item_id=str(body.item_id),
        note=body.note or "",
    )


@ops.post(
    f"{PREFIX}/orders/{{order_id}}/out-of-stock/answer",
    rpc="AnswerOutOfStock",
    answer=one(OrderDetail, "order"),
    summary="The customer's answer to the alternative: accepted (the item is replaced) or not",
    responses=errors(400, 401, 404, 409),
)
def answer_out_of_stock(
    store_id: StoreId, order_id: OrderId, body: AnswerBody
) -> pb.AnswerOutOfStockRequest:
    return pb.AnswerOutOfStockRequest(
        store_id=str(store_id),
        order_id=str(order_id),
        customer_accepted=body.customer_accepted,
        replacement_product_id=str(body.replacement_product_id or ""),
        replacement_quantity=body.replacement_quantity or 0,
        note=body.note or "",
    )


@ops.post(
    f"{PREFIX}/orders/{{order_id}}/courier-report",
    rpc="ReportCourier",
    answer=one(CourierReport, "report"),
    summary="Report the courier of an order of the history (once)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def report_courier(
    store_id: StoreId, order_id: OrderId, body: CourierReportBody
) -> pb.ReportCourierRequest:
    return pb.ReportCourierRequest(
        store_id=str(store_id),
        order_id=str(order_id),
        reason=body.reason.to_proto(),
        comment=body.comment or "",
    )


@router.post(
    f"{PREFIX}/orders/{{order_id}}/courier-contact",
    summary="Contact the courier of an order in progress (recorded on the order)",
    responses=errors(400, 401, 404, 409),
)
async def contact_courier(
    store_id: StoreId,
    order_id: OrderId,
    body: CourierContactBody,
    caller: CurrentCaller,
    partners: Partners,
) -> CourierContact:
    response = await partners.ContactCourier(
        pb.ContactCourierRequest(
            store_id=str(store_id), order_id=str(order_id), message=body.message or ""
        ),
        metadata=caller.metadata,
    )
    return CourierContact(courier_name=response.courier_name, courier_phone=response.courier_phone)


# --- menu --------------------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/products",
    rpc="ListProducts",
    answer=page_of(ProductPage, Product, "products"),
    summary="The menu, by name",
    responses=errors(400, 401, 404),
)
def list_products(
    store_id: StoreId,
    page: Page,
    active_only: Annotated[bool, Query(description="Only what is on the menu now.")] = False,
) -> pb.ListProductsRequest:
    return pb.ListProductsRequest(store_id=str(store_id), active_only=active_only, page=page)


@ops.put(
    f"{PREFIX}/products/{{product_id}}/price",
    rpc="SetProductPrice",
    answer=one(Product, "product"),
    summary="Change a price (directly)",
    responses=errors(400, 401, 404),
)
def set_price(
    store_id: StoreId, product_id: ProductId, body: PriceBody
) -> pb.SetProductPriceRequest:
    return pb.SetProductPriceRequest(
        store_id=str(store_id), product_id=str(product_id), price_cents=body.price_cents
    )


@router.post(
    f"{PREFIX}/products/{{product_id}}/deactivate",
    summary="Take a product off the menu, optionally until a set time",
    responses=errors(400, 401, 404),
)
async def deactivate_product(
    store_id: StoreId,
    product_id: ProductId,
    body: DeactivateBody,
    caller: CurrentCaller,
    partners: Partners,
) -> Product:
    request = pb.DeactivateProductRequest(
        store_id=str(store_id), product_id=str(product_id), reason=body.reason or ""
    )
    if body.reactivate_at is not None:
        request.reactivate_time.CopyFrom(_stamp(body.reactivate_at))
    try:
        response = await partners.DeactivateProduct(request, metadata=caller.metadata)
    except grpc.aio.AioRpcError as error:
        raise problem_from_rpc_error(
            error, rename=lambda name: "reactivate_at" if name == "reactivate_time" else name
        ) from None
    return Product.from_proto(response.product)


@ops.post(
    f"{PREFIX}/products/{{product_id}}/activate",
    rpc="ActivateProduct",
    answer=one(Product, "product"),
    summary="Put a product back on the menu",
    responses=errors(400, 401, 404),
)
def activate_product(store_id: StoreId, product_id: ProductId) -> pb.ActivateProductRequest:
    return pb.ActivateProductRequest(store_id=str(store_id), product_id=str(product_id))


@ops.post(
    f"{PREFIX}/content-changes",
    rpc="SubmitContentChange",
    answer=one(ContentChange, "content_change"),
    summary="Ask for a new name or description, or a new product (a message to support)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
def submit_content_change(
    store_id: StoreId, body: ContentChangeBody
) -> pb.SubmitContentChangeRequest:
    return pb.SubmitContentChangeRequest(
        store_id=str(store_id),
        product_id=str(body.product_id or ""),
        proposed_name=body.proposed_name or "",
        proposed_description=body.proposed_description or "",
        proposed_price_cents=body.proposed_price_cents or 0,
        note=body.note or "",
        reply_to_email=body.reply_to_email or "",
    )


@ops.get(
    f"{PREFIX}/content-changes",
    rpc="ListContentChanges",
    answer=page_of(ContentChangePage, ContentChange, "content_changes"),
    summary="The store's content changes, newest first",
    responses=errors(400, 401, 404),
)
def list_content_changes(store_id: StoreId, page: Page) -> pb.ListContentChangesRequest:
    return pb.ListContentChangesRequest(store_id=str(store_id), page=page)


# --- check-ins ---------------------------------------------------------------------------------


@ops.post(
    f"{PREFIX}/check-ins",
    rpc="CheckIn",
    answer=one(CheckIn, "check_in"),
    summary="Today's check-in (once a day; a second one answers 409)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def check_in(store_id: StoreId) -> pb.CheckInRequest:
    return pb.CheckInRequest(store_id=str(store_id))


@ops.get(
    f"{PREFIX}/check-ins",
    rpc="ListCheckIns",
    answer=page_of(CheckInPage, CheckIn, "check_ins"),
    summary="The store's check-ins, latest day first",
    responses=errors(400, 401, 404),
)
def list_check_ins(store_id: StoreId, page: Page) -> pb.ListCheckInsRequest:
    return pb.ListCheckInsRequest(store_id=str(store_id), page=page)


# --- promotions --------------------------------------------------------------------------------


@ops.post(
    f"{PREFIX}/promotions",
    rpc="CreatePromotion",
    answer=one(Promotion, "promotion"),
    summary="Step 1: a draft promotion",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
def create_promotion(store_id: StoreId, body: PromotionBody) -> pb.CreatePromotionRequest:
    return pb.CreatePromotionRequest(
        store_id=str(store_id), name=body.name, kind=body.kind.to_proto()
    )


@ops.put(
    f"{PREFIX}/promotions/{{promotion_id}}/configuration",
    rpc="ConfigurePromotion",
    answer=one(Promotion, "promotion"),
    fields={"start_time": "starts_at", "end_time": "ends_at"},
    summary="Step 2: the discount, the products and the period",
    responses=errors(400, 401, 404, 409),
)
def configure_promotion(
    store_id: StoreId, promotion_id: PromotionId, body: PromotionConfigBody
) -> pb.ConfigurePromotionRequest:
    return pb.ConfigurePromotionRequest(
        store_id=str(store_id),
        promotion_id=str(promotion_id),
        percent_off=body.percent_off or 0,
        amount_off_cents=body.amount_off_cents or 0,
        min_order_cents=body.min_order_cents or 0,
        product_ids=[str(p) for p in body.product_ids],
        start_time=_stamp(body.starts_at),
        end_time=_stamp(body.ends_at),
    )


@ops.post(
    f"{PREFIX}/promotions/{{promotion_id}}/activate",
    rpc="ActivatePromotion",
    answer=one(Promotion, "promotion"),
    summary="Step 3: activate a configured promotion",
    responses=errors(400, 401, 404, 409),
)
def activate_promotion(store_id: StoreId, promotion_id: PromotionId) -> pb.ActivatePromotionRequest:
    return pb.ActivatePromotionRequest(store_id=str(store_id), promotion_id=str(promotion_id))


@ops.get(
    f"{PREFIX}/promotions",
    rpc="ListPromotions",
    answer=page_of(PromotionPage, Promotion, "promotions"),
    summary="Promotions, newest first (status=active: those running or scheduled)",
    responses=errors(400, 401, 404),
)
def list_promotions(
    store_id: StoreId,
    page: Page,
    promotion_status: Annotated[
        PromotionStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> pb.ListPromotionsRequest:
    return pb.ListPromotionsRequest(
        store_id=str(store_id),
        status=(
            promotion_status.to_proto() if promotion_status else pb.PROMOTION_STATUS_UNSPECIFIED
        ),
        page=page,
    )


@ops.get(
    f"{PREFIX}/promotions/{{promotion_id}}",
    rpc="GetPromotion",
    answer=one(Promotion, "promotion"),
    summary="One promotion",
    responses=errors(400, 401, 404),
)
def get_promotion(store_id: StoreId, promotion_id: PromotionId) -> pb.GetPromotionRequest:
    return pb.GetPromotionRequest(store_id=str(store_id), promotion_id=str(promotion_id))


@ops.post(
    f"{PREFIX}/promotions/{{promotion_id}}/problems",
    rpc="ReportPromotionProblem",
    answer=one(SupportMessage, "message"),
    summary="Report a problem with a promotion (a message to support)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
def report_promotion_problem(
    store_id: StoreId, promotion_id: PromotionId, body: ProblemBody
) -> pb.ReportPromotionProblemRequest:
    return pb.ReportPromotionProblemRequest(
        store_id=str(store_id),
        promotion_id=str(promotion_id),
        description=body.description,
        reply_to_email=body.reply_to_email or "",
    )


# --- messages to support -----------------------------------------------------------------------


@ops.post(
    f"{PREFIX}/messages",
    rpc="SendSupportMessage",
    answer=one(SupportMessage, "message"),
    summary="Send us a message (invoices and orders: name an order code or a period)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
def send_message(store_id: StoreId, body: SupportMessageBody) -> pb.SendSupportMessageRequest:
    return pb.SendSupportMessageRequest(
        store_id=str(store_id),
        category=body.category.to_proto(),
        subject=body.subject,
        body=body.body,
        order_code=body.order_code or "",
        period=body.period or "",
        reply_to_email=body.reply_to_email or "",
    )


@ops.get(
    f"{PREFIX}/messages",
    rpc="ListSupportMessages",
    answer=page_of(SupportMessagePage, SupportMessage, "messages"),
    summary="The store's messages to support and their tickets, newest first",
    responses=errors(400, 401, 404),
)
def list_messages(store_id: StoreId, page: Page) -> pb.ListSupportMessagesRequest:
    return pb.ListSupportMessagesRequest(store_id=str(store_id), page=page)
