"""The delivery-partner back office: `/v1/partners/{store_id}/...`, and the partners operator
routes `/v1/operator/partners/...`.

Every route forwards the caller's token; the partners service decides (a store's managers see
their store and get 404 for any other; operators read every store and make the decisions). Proof
documents travel as the raw request body, their type in Content-Type, like support's attachments.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.problems import Problem, ProblemException
from services.gateway.schemas_partners import (
    AnswerBody,
    BankDetailBody,
    BankDetailChange,
    BankDetailChangePage,
    BankDetailChangeStatus,
    CancelResult,
    CheckIn,
    CheckInPage,
    ContentChange,
    ContentChangeBody,
    ContentChangePage,
    ContentDecision,
    CourierContact,
    CourierContactBody,
    CourierReport,
    CourierReportBody,
    DeactivateBody,
    Escalation,
    EscalationPage,
    EscalationStatus,
    HistoryStatus,
    MissingCheckIn,
    MissingCheckInPage,
    NoteBody,
    Order,
    OrderDetail,
    OrderPage,
    OutOfStockBody,
    PriceBody,
    ProblemBody,
    Product,
    ProductBody,
    ProductPage,
    Promotion,
    PromotionBody,
    PromotionConfigBody,
    PromotionPage,
    PromotionStatus,
    RefundBody,
    RegisterStoreBody,
    RejectBody,
    Store,
    StoreSettingsBody,
    SupportMessage,
    SupportMessageBody,
    SupportMessagePage,
)
from services.kit.grpcclient import create_channel

router = APIRouter()
PREFIX = "/v1/partners/{store_id}"
OPERATOR = "/v1/operator/partners"
PARTNERS_TAG = "partners"
OPERATOR_TAG = "operator"

StoreId = Annotated[uuid.UUID, Path(description="The store's id (its organisation's id).")]
OrderId = Annotated[uuid.UUID, Path(description="The order's id.")]
ProductId = Annotated[uuid.UUID, Path(description="The product's id.")]
PromotionId = Annotated[uuid.UUID, Path(description="The promotion's id.")]
ChangeId = Annotated[uuid.UUID, Path(description="The bank-detail change's id.")]
ContentChangeId = Annotated[uuid.UUID, Path(description="The content change's id.")]


async def partners_stub(request: Request) -> partners_pb2_grpc.PartnersServiceStub:
    """The channel to partners, made on first use in the event loop (a sync dependency would
    run in a worker thread, where grpc.aio finds no loop)."""
    state = request.app.state
    stub: partners_pb2_grpc.PartnersServiceStub | None = getattr(state, "partners", None)
    if stub is None:
        settings = state.settings
        channel = create_channel(
            settings.partners_addr, default_timeout=settings.grpc_default_timeout
        )
        state.partners_channel = channel
        stub = state.partners = partners_pb2_grpc.PartnersServiceStub(channel)
    return stub


async def close_channel(state: object) -> None:
    channel = getattr(state, "partners_channel", None)
    if channel is not None:
        await channel.close()


Partners = Annotated[partners_pb2_grpc.PartnersServiceStub, Depends(partners_stub)]


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def _next(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


def _stamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    return stamp


def _document(content: bytes, content_type: str, filename: str) -> Response:
    """A proof, as an attachment (never rendered inline by a browser)."""
    return Response(
        content=content,
        media_type=content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",
        },
    )


_DOCUMENT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The document, as an attachment.",
    }
}


# --- the store ---------------------------------------------------------------------------------


@router.get(PREFIX, tags=[PARTNERS_TAG], summary="The store", responses=errors(400, 401, 404))
async def get_store(store_id: StoreId, caller: CurrentCaller, partners: Partners) -> Store:
    response = await partners.GetStore(
        pb.GetStoreRequest(store_id=str(store_id)), metadata=caller.metadata
    )
    return Store.from_proto(response.store)


@router.put(
    f"{PREFIX}/settings",
    tags=[PARTNERS_TAG],
    summary="Change the operations contact (where support answers) and phone",
    responses=errors(400, 401, 404),
)
async def update_settings(
    store_id: StoreId, body: StoreSettingsBody, caller: CurrentCaller, partners: Partners
) -> Store:
    response = await partners.UpdateStoreSettings(
        pb.UpdateStoreSettingsRequest(
            store_id=str(store_id), operations_email=body.operations_email, phone=body.phone or ""
        ),
        metadata=caller.metadata,
    )
    return Store.from_proto(response.store)


# --- orders ------------------------------------------------------------------------------------


@router.get(
    f"{PREFIX}/orders/in-progress",
    tags=[PARTNERS_TAG],
    summary="Orders in progress (accepted), newest first",
    responses=errors(400, 401, 404),
)
async def orders_in_progress(
    store_id: StoreId, caller: CurrentCaller, partners: Partners, page: Page
) -> OrderPage:
    response = await partners.ListOrdersInProgress(
        pb.ListOrdersInProgressRequest(store_id=str(store_id), page=page),
        metadata=caller.metadata,
    )
    return OrderPage(
        items=[Order.from_proto(o) for o in response.orders], next_page_token=_next(response.page)
    )


@router.get(
    f"{PREFIX}/orders/history",
    tags=[PARTNERS_TAG],
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
        dt.datetime | None, Query(alias="from", description="Orders placed at or after.")
    ] = None,
    period_end: Annotated[
        dt.datetime | None, Query(alias="to", description="Orders placed before.")
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
        items=[Order.from_proto(o) for o in response.orders], next_page_token=_next(response.page)
    )


@router.get(
    f"{PREFIX}/orders/{{order_id}}",
    tags=[PARTNERS_TAG],
    summary="One order: items, payments, every event, escalation, courier report",
    responses=errors(400, 401, 404),
)
async def get_order(
    store_id: StoreId, order_id: OrderId, caller: CurrentCaller, partners: Partners
) -> OrderDetail:
    response = await partners.GetOrder(
        pb.GetOrderRequest(store_id=str(store_id), order_id=str(order_id)),
        metadata=caller.metadata,
    )
    return OrderDetail.from_proto(response.order)


@router.post(
    f"{PREFIX}/orders/{{order_id}}/out-of-stock",
    tags=[PARTNERS_TAG],
    summary="A product of this order ran out: starts the escalation",
    description=(
        "The product comes off the menu and you are asked to call the customer and offer an "
        "alternative before `escalation.answer_deadline`; then post the answer."
    ),
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def report_out_of_stock(
    store_id: StoreId,
    order_id: OrderId,
    body: OutOfStockBody,
    caller: CurrentCaller,
    partners: Partners,
) -> OrderDetail:
    response = await partners.ReportOutOfStock(
        pb.ReportOutOfStockRequest(
            store_id=str(store_id),
            order_id=str(order_id),
            item_id=str(body.item_id),
            note=body.note or "",
        ),
        metadata=caller.metadata,
    )
    return OrderDetail.from_proto(response.order)


@router.post(
    f"{PREFIX}/orders/{{order_id}}/out-of-stock/answer",
    tags=[PARTNERS_TAG],
    summary="The customer's answer to the alternative: accepted (the item is replaced) or not",
    responses=errors(400, 401, 404, 409),
)
async def answer_out_of_stock(
    store_id: StoreId,
    order_id: OrderId,
    body: AnswerBody,
    caller: CurrentCaller,
    partners: Partners,
) -> OrderDetail:
    response = await partners.AnswerOutOfStock(
        pb.AnswerOutOfStockRequest(
            store_id=str(store_id),
            order_id=str(order_id),
            customer_accepted=body.customer_accepted,
            replacement_product_id=str(body.replacement_product_id or ""),
            replacement_quantity=body.replacement_quantity or 0,
            note=body.note or "",
        ),
        metadata=caller.metadata,
    )
    return OrderDetail.from_proto(response.order)


@router.post(
    f"{PREFIX}/orders/{{order_id}}/courier-report",
    tags=[PARTNERS_TAG],
    summary="Report the courier of an order of the history (once)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def report_courier(
    store_id: StoreId,
    order_id: OrderId,
    body: CourierReportBody,
    caller: CurrentCaller,
    partners: Partners,
) -> CourierReport:
    response = await partners.ReportCourier(
        pb.ReportCourierRequest(
            store_id=str(store_id),
            order_id=str(order_id),
            reason=body.reason.to_proto(),
            comment=body.comment or "",
        ),
        metadata=caller.metadata,
    )
    return CourierReport.from_proto(response.report)


@router.post(
    f"{PREFIX}/orders/{{order_id}}/courier-contact",
    tags=[PARTNERS_TAG],
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


@router.get(
    f"{PREFIX}/products",
    tags=[PARTNERS_TAG],
    summary="The menu, by name",
    responses=errors(400, 401, 404),
)
async def list_products(
    store_id: StoreId,
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    active_only: Annotated[bool, Query(description="Only what is on the menu now.")] = False,
) -> ProductPage:
    response = await partners.ListProducts(
        pb.ListProductsRequest(store_id=str(store_id), active_only=active_only, page=page),
        metadata=caller.metadata,
    )
    return ProductPage(
        items=[Product.from_proto(p) for p in response.products],
        next_page_token=_next(response.page),
    )


@router.put(
    f"{PREFIX}/products/{{product_id}}/price",
    tags=[PARTNERS_TAG],
    summary="Change a price (directly)",
    responses=errors(400, 401, 404),
)
async def set_price(
    store_id: StoreId,
    product_id: ProductId,
    body: PriceBody,
    caller: CurrentCaller,
    partners: Partners,
) -> Product:
    response = await partners.SetProductPrice(
        pb.SetProductPriceRequest(
            store_id=str(store_id), product_id=str(product_id), price_cents=body.price_cents
        ),
        metadata=caller.metadata,
    )
    return Product.from_proto(response.product)


@router.post(
    f"{PREFIX}/products/{{product_id}}/deactivate",
    tags=[PARTNERS_TAG],
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
    response = await partners.DeactivateProduct(request, metadata=caller.metadata)
    return Product.from_proto(response.product)


@router.post(
    f"{PREFIX}/products/{{product_id}}/activate",
    tags=[PARTNERS_TAG],
    summary="Put a product back on the menu",
    responses=errors(400, 401, 404),
)
async def activate_product(
    store_id: StoreId, product_id: ProductId, caller: CurrentCaller, partners: Partners
) -> Product:
    response = await partners.ActivateProduct(
        pb.ActivateProductRequest(store_id=str(store_id), product_id=str(product_id)),
        metadata=caller.metadata,
    )
    return Product.from_proto(response.product)


@router.post(
    f"{PREFIX}/content-changes",
    tags=[PARTNERS_TAG],
    summary="Ask for a new name or description, or a new product (a message to support)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
async def submit_content_change(
    store_id: StoreId, body: ContentChangeBody, caller: CurrentCaller, partners: Partners
) -> ContentChange:
    response = await partners.SubmitContentChange(
        pb.SubmitContentChangeRequest(
            store_id=str(store_id),
            product_id=str(body.product_id or ""),
            proposed_name=body.proposed_name or "",
            proposed_description=body.proposed_description or "",
            proposed_price_cents=body.proposed_price_cents or 0,
            note=body.note or "",
            reply_to_email=body.reply_to_email or "",
        ),
        metadata=caller.metadata,
    )
    return ContentChange.from_proto(response.content_change)


@router.get(
    f"{PREFIX}/content-changes",
    tags=[PARTNERS_TAG],
    summary="The store's content changes, newest first",
    responses=errors(400, 401, 404),
)
async def list_content_changes(
    store_id: StoreId, caller: CurrentCaller, partners: Partners, page: Page
) -> ContentChangePage:
    response = await partners.ListContentChanges(
        pb.ListContentChangesRequest(store_id=str(store_id), page=page), metadata=caller.metadata
    )
    return ContentChangePage(
        items=[ContentChange.from_proto(c) for c in response.content_changes],
        next_page_token=_next(response.page),
    )


# --- check-ins ---------------------------------------------------------------------------------


@router.post(
    f"{PREFIX}/check-ins",
    tags=[PARTNERS_TAG],
    summary="Today's check-in (once a day; a second one answers 409)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def check_in(store_id: StoreId, caller: CurrentCaller, partners: Partners) -> CheckIn:
    response = await partners.CheckIn(
        pb.CheckInRequest(store_id=str(store_id)), metadata=caller.metadata
    )
    return CheckIn.from_proto(response.check_in)


@router.get(
    f"{PREFIX}/check-ins",
    tags=[PARTNERS_TAG],
    summary="The store's check-ins, latest day first",
    responses=errors(400, 401, 404),
)
async def list_check_ins(
    store_id: StoreId, caller: CurrentCaller, partners: Partners, page: Page
) -> CheckInPage:
    response = await partners.ListCheckIns(
        pb.ListCheckInsRequest(store_id=str(store_id), page=page), metadata=caller.metadata
    )
    return CheckInPage(
        items=[CheckIn.from_proto(c) for c in response.check_ins],
        next_page_token=_next(response.page),
    )


# --- promotions --------------------------------------------------------------------------------


@router.post(
    f"{PREFIX}/promotions",
    tags=[PARTNERS_TAG],
    summary="Step 1: a draft promotion",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
async def create_promotion(
    store_id: StoreId, body: PromotionBody, caller: CurrentCaller, partners: Partners
) -> Promotion:
    response = await partners.CreatePromotion(
        pb.CreatePromotionRequest(
            store_id=str(store_id), name=body.name, kind=body.kind.to_proto()
        ),
        metadata=caller.metadata,
    )
    return Promotion.from_proto(response.promotion)


@router.put(
    f"{PREFIX}/promotions/{{promotion_id}}/configuration",
    tags=[PARTNERS_TAG],
    summary="Step 2: the discount, the products and the period",
    responses=errors(400, 401, 404, 409),
)
async def configure_promotion(
    store_id: StoreId,
    promotion_id: PromotionId,
    body: PromotionConfigBody,
    caller: CurrentCaller,
    partners: Partners,
) -> Promotion:
    response = await partners.ConfigurePromotion(
        pb.ConfigurePromotionRequest(
            store_id=str(store_id),
            promotion_id=str(promotion_id),
            percent_off=body.percent_off or 0,
            amount_off_cents=body.amount_off_cents or 0,
            min_order_cents=body.min_order_cents or 0,
            product_ids=[str(p) for p in body.product_ids],
            start_time=_stamp(body.starts_at),
            end_time=_stamp(body.ends_at),
        ),
        metadata=caller.metadata,
    )
    return Promotion.from_proto(response.promotion)


@router.post(
    f"{PREFIX}/promotions/{{promotion_id}}/activate",
    tags=[PARTNERS_TAG],
    summary="Step 3: activate a configured promotion",
    responses=errors(400, 401, 404, 409),
)
async def activate_promotion(
    store_id: StoreId, promotion_id: PromotionId, caller: CurrentCaller, partners: Partners
) -> Promotion:
    response = await partners.ActivatePromotion(
        pb.ActivatePromotionRequest(store_id=str(store_id), promotion_id=str(promotion_id)),
        metadata=caller.metadata,
    )
    return Promotion.from_proto(response.promotion)


@router.get(
    f"{PREFIX}/promotions",
    tags=[PARTNERS_TAG],
    summary="Promotions, newest first (status=active: those running or scheduled)",
    responses=errors(400, 401, 404),
)
async def list_promotions(
    store_id: StoreId,
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    promotion_status: Annotated[
        PromotionStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> PromotionPage:
    response = await partners.ListPromotions(
        pb.ListPromotionsRequest(
            store_id=str(store_id),
            status=(
                promotion_status.to_proto() if promotion_status else pb.PROMOTION_STATUS_UNSPECIFIED
            ),
            page=page,
        ),
        metadata=caller.metadata,
    )
    return PromotionPage(
        items=[Promotion.from_proto(p) for p in response.promotions],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{PREFIX}/promotions/{{promotion_id}}",
    tags=[PARTNERS_TAG],
    summary="One promotion",
    responses=errors(400, 401, 404),
)
async def get_promotion(
    store_id: StoreId, promotion_id: PromotionId, caller: CurrentCaller, partners: Partners
) -> Promotion:
    response = await partners.GetPromotion(
        pb.GetPromotionRequest(store_id=str(store_id), promotion_id=str(promotion_id)),
        metadata=caller.metadata,
    )
    return Promotion.from_proto(response.promotion)


@router.post(
    f"{PREFIX}/promotions/{{promotion_id}}/problems",
    tags=[PARTNERS_TAG],
    summary="Report a problem with a promotion (a message to support)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
async def report_promotion_problem(
    store_id: StoreId,
    promotion_id: PromotionId,
    body: ProblemBody,
    caller: CurrentCaller,
    partners: Partners,
) -> SupportMessage:
    response = await partners.ReportPromotionProblem(
        pb.ReportPromotionProblemRequest(
            store_id=str(store_id),
            promotion_id=str(promotion_id),
            description=body.description,
            reply_to_email=body.reply_to_email or "",
        ),
        metadata=caller.metadata,
    )
    return SupportMessage.from_proto(response.message)


# --- messages to support -----------------------------------------------------------------------


@router.post(
    f"{PREFIX}/messages",
    tags=[PARTNERS_TAG],
    summary="Send us a message (invoices and orders: name an order code or a period)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404),
)
async def send_message(
    store_id: StoreId, body: SupportMessageBody, caller: CurrentCaller, partners: Partners
) -> SupportMessage:
    response = await partners.SendSupportMessage(
        pb.SendSupportMessageRequest(
            store_id=str(store_id),
            category=body.category.to_proto(),
            subject=body.subject,
            body=body.body,
            order_code=body.order_code or "",
            period=body.period or "",
            reply_to_email=body.reply_to_email or "",
        ),
        metadata=caller.metadata,
    )
    return SupportMessage.from_proto(response.message)


@router.get(
    f"{PREFIX}/messages",
    tags=[PARTNERS_TAG],
    summary="The store's messages to support and their tickets, newest first",
    responses=errors(400, 401, 404),
)
async def list_messages(
    store_id: StoreId, caller: CurrentCaller, partners: Partners, page: Page
) -> SupportMessagePage:
    response = await partners.ListSupportMessages(
        pb.ListSupportMessagesRequest(store_id=str(store_id), page=page),
        metadata=caller.metadata,
    )
    return SupportMessagePage(
        items=[SupportMessage.from_proto(m) for m in response.messages],
        next_page_token=_next(response.page),
    )


# --- bank details ------------------------------------------------------------------------------


@router.post(
    f"{PREFIX}/bank-detail-changes",
    tags=[PARTNERS_TAG],
    summary="Ask to change the bank details (applied after a proof and an operator's approval)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def submit_bank_detail_change(
    store_id: StoreId, body: BankDetailBody, caller: CurrentCaller, partners: Partners
) -> BankDetailChange:
    response = await partners.SubmitBankDetailChange(
        pb.SubmitBankDetailChangeRequest(
            store_id=str(store_id),
            iban=body.iban,
            bic=body.bic,
            account_holder=body.account_holder,
        ),
        metadata=caller.metadata,
    )
    return BankDetailChange.from_proto(response.change)


@router.get(
    f"{PREFIX}/bank-detail-changes",
    tags=[PARTNERS_TAG],
    summary="The store's bank-detail changes, newest first",
    responses=errors(400, 401, 404),
)
async def list_bank_detail_changes(
    store_id: StoreId, caller: CurrentCaller, partners: Partners, page: Page
) -> BankDetailChangePage:
    response = await partners.ListBankDetailChanges(
        pb.ListBankDetailChangesRequest(store_id=str(store_id), page=page),
        metadata=caller.metadata,
    )
    return BankDetailChangePage(
        items=[BankDetailChange.from_proto(c) for c in response.changes],
        next_page_token=_next(response.page),
    )


# The upload route: the gateway lets its body past MAX_BODY_BYTES, up to MAX_UPLOAD_BYTES, and
# partners' own checks (PROOF_MAX_BYTES, the types, the bytes) decide.
PROOF_UPLOAD = ("PUT", f"{PREFIX}/bank-detail-changes/{{change_id}}/proof")


@router.put(
    PROOF_UPLOAD[1],
    tags=[PARTNERS_TAG],
    summary="Upload the bank's proof: the raw body, its type (PDF, PNG, JPEG) in Content-Type",
    responses={
        **errors(400, 401, 404, 409),
        413: {
            "model": Problem,
            "description": "Larger than the gateway's upload limit (MAX_UPLOAD_BYTES, 3,900,000 "
            "bytes by default). Below it, a proof over partners' own limit is a 400 on `content`.",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_proof(
    store_id: StoreId,
    change_id: ChangeId,
    request: Request,
    caller: CurrentCaller,
    partners: Partners,
    filename: Annotated[str, Query(min_length=1, max_length=200, examples=["attestation.pdf"])],
) -> BankDetailChange:
    content_type = request.headers.get("content-type", "")
    if not content_type:
        raise ProblemException(
            400,
            "invalid_argument",
            "1 field is invalid: content_type",
            errors=[("content_type", "send the document's type in Content-Type")],
        )
    response = await partners.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=str(store_id),
            change_id=str(change_id),
            filename=filename,
            content_type=content_type,
            content=await request.body(),
        ),
        metadata=caller.metadata,
    )
    return BankDetailChange.from_proto(response.change)


@router.get(
    f"{PREFIX}/bank-detail-changes/{{change_id}}/proof",
    tags=[PARTNERS_TAG],
    summary="Download the store's own proof",
    response_class=Response,
    responses={**errors(400, 401, 404), **_DOCUMENT_RESPONSE},
)
async def download_proof(
    store_id: StoreId, change_id: ChangeId, caller: CurrentCaller, partners: Partners
) -> Response:
    response = await partners.GetBankDetailProof(
        pb.GetBankDetailProofRequest(store_id=str(store_id), change_id=str(change_id)),
        metadata=caller.metadata,
    )
    return _document(response.content, response.document.content_type, response.document.filename)


# --- operators ---------------------------------------------------------------------------------


@router.post(
    f"{OPERATOR}/stores",
    tags=[OPERATOR_TAG],
    summary="Open the back office of a delivery_partner organisation (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def register_store(
    body: RegisterStoreBody, caller: CurrentCaller, partners: Partners
) -> Store:
    response = await partners.RegisterStore(
        pb.RegisterStoreRequest(
            store_id=str(body.store_id),
            operations_email=body.operations_email,
            phone=body.phone or "",
            timezone=body.timezone or "",
            currency=body.currency or "",
        ),
        metadata=caller.metadata,
    )
    return Store.from_proto(response.store)


@router.post(
    f"{OPERATOR}/stores/{{store_id}}/products",
    tags=[OPERATOR_TAG],
    summary="Add a product to a store's menu (onboarding)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404),
)
async def create_product(
    store_id: StoreId, body: ProductBody, caller: CurrentCaller, partners: Partners
) -> Product:
    response = await partners.CreateProduct(
        pb.CreateProductRequest(
            store_id=str(store_id),
            name=body.name,
            description=body.description,
            price_cents=body.price_cents,
        ),
        metadata=caller.metadata,
    )
    return Product.from_proto(response.product)


@router.get(
    f"{OPERATOR}/check-ins/missing",
    tags=[OPERATOR_TAG],
    summary="Stores without a check-in on a day (default: each store's own today)",
    responses=errors(400, 401, 403),
)
async def stores_not_checked_in(
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    day: Annotated[dt.date | None, Query(description="YYYY-MM-DD")] = None,
) -> MissingCheckInPage:
    response = await partners.ListStoresNotCheckedIn(
        pb.ListStoresNotCheckedInRequest(day=day.isoformat() if day else "", page=page),
        metadata=caller.metadata,
    )
    return MissingCheckInPage(
        items=[MissingCheckIn.from_proto(s) for s in response.stores],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{OPERATOR}/bank-detail-changes",
    tags=[OPERATOR_TAG],
    summary="Bank-detail changes of every store, by status (e.g. proof_submitted: to review)",
    responses=errors(400, 401, 403),
)
async def review_bank_detail_changes(
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    change_status: Annotated[
        BankDetailChangeStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> BankDetailChangePage:
    response = await partners.ListBankDetailChanges(
        pb.ListBankDetailChangesRequest(
            status=(
                change_status.to_proto()
                if change_status
                else pb.BANK_DETAIL_CHANGE_STATUS_UNSPECIFIED
            ),
            page=page,
        ),
        metadata=caller.metadata,
    )
    return BankDetailChangePage(
        items=[BankDetailChange.from_proto(c) for c in response.changes],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/proof",
    tags=[OPERATOR_TAG],
    summary="Download a change's proof",
    response_class=Response,
    responses={**errors(400, 401, 403, 404), **_DOCUMENT_RESPONSE},
)
async def operator_download_proof(
    change_id: ChangeId, caller: CurrentCaller, partners: Partners
) -> Response:
    response = await partners.GetBankDetailProof(
        pb.GetBankDetailProofRequest(change_id=str(change_id)), metadata=caller.metadata
    )
    return _document(response.content, response.document.content_type, response.document.filename)


@router.post(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/approve",
    tags=[OPERATOR_TAG],
    summary="Approve a change whose proof was checked: the new details apply now",
    responses=errors(400, 401, 403, 404, 409),
)
async def approve_bank_detail_change(
    change_id: ChangeId, caller: CurrentCaller, partners: Partners
) -> BankDetailChange:
    response = await partners.DecideBankDetailChange(
        pb.DecideBankDetailChangeRequest(change_id=str(change_id), approve=True),
        metadata=caller.metadata,
    )
    return BankDetailChange.from_proto(response.change)


@router.post(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/reject",
    tags=[OPERATOR_TAG],
    summary="Reject a change, saying why",
    responses=errors(400, 401, 403, 404, 409),
)
async def reject_bank_detail_change(
    change_id: ChangeId, body: RejectBody, caller: CurrentCaller, partners: Partners
) -> BankDetailChange:
    response = await partners.DecideBankDetailChange(
        pb.DecideBankDetailChangeRequest(
            change_id=str(change_id), approve=False, reason=body.reason
        ),
        metadata=caller.metadata,
    )
    return BankDetailChange.from_proto(response.change)


@router.get(
    f"{OPERATOR}/escalations",
    tags=[OPERATOR_TAG],
    summary="Out-of-stock escalations, oldest first (default: waiting on support)",
    responses=errors(400, 401, 403),
)
async def list_escalations(
    caller: CurrentCaller,
    partners: Partners,
    page: Page,
    escalation_status: Annotated[
        EscalationStatus | None, Query(alias="status", description="Default: escalated.")
    ] = None,
) -> EscalationPage:
    response = await partners.ListEscalations(
        pb.ListEscalationsRequest(
            status=(
                escalation_status.to_proto()
                if escalation_status
                else pb.ESCALATION_STATUS_UNSPECIFIED
            ),
            page=page,
        ),
        metadata=caller.metadata,
    )
    return EscalationPage(
        items=[Escalation.from_proto(e) for e in response.escalations],
        next_page_token=_next(response.page),
    )


@router.post(
    f"{OPERATOR}/orders/{{order_id}}/cancel",
    tags=[OPERATOR_TAG],
    summary="Cancel an escalated order (product unavailable); a paid order is refunded",
    responses=errors(400, 401, 403, 404, 409),
)
async def cancel_escalated_order(
    order_id: OrderId,
    caller: CurrentCaller,
    partners: Partners,
    body: NoteBody | None = None,
) -> CancelResult:
    response = await partners.CancelEscalatedOrder(
        pb.CancelEscalatedOrderRequest(
            order_id=str(order_id), note=(body.note if body else None) or ""
        ),
        metadata=caller.metadata,
    )
    return CancelResult(
        escalation=Escalation.from_proto(response.escalation),
        order=Order.from_proto(response.order),
    )


@router.post(
    f"{OPERATOR}/orders/{{order_id}}/refund",
    tags=[OPERATOR_TAG],
    summary="Refund what was paid for an order, with the reason and who funds it",
    responses=errors(400, 401, 403, 404, 409),
)
async def refund_order(
    order_id: OrderId, body: RefundBody, caller: CurrentCaller, partners: Partners
) -> Order:
    response = await partners.RefundOrder(
        pb.RefundOrderRequest(
            order_id=str(order_id), reason=body.reason, funded_by=body.funded_by.to_proto()
        ),
        metadata=caller.metadata,
    )
    return Order.from_proto(response.order)


@router.post(
    f"{OPERATOR}/content-changes/{{content_change_id}}/approve",
    tags=[OPERATOR_TAG],
    summary="Apply a content change to the menu",
    responses=errors(400, 401, 403, 404, 409),
)
async def approve_content_change(
    content_change_id: ContentChangeId,
    caller: CurrentCaller,
    partners: Partners,
    body: NoteBody | None = None,
) -> ContentDecision:
    response = await partners.DecideContentChange(
        pb.DecideContentChangeRequest(
            content_change_id=str(content_change_id),
            approve=True,
            note=(body.note if body else None) or "",
        ),
        metadata=caller.metadata,
    )
    return ContentDecision(
        content_change=ContentChange.from_proto(response.content_change),
        product=Product.from_proto(response.product) if response.HasField("product") else None,
    )


@router.post(
    f"{OPERATOR}/content-changes/{{content_change_id}}/reject",
    tags=[OPERATOR_TAG],
    summary="Reject a content change, saying why",
    responses=errors(400, 401, 403, 404, 409),
)
async def reject_content_change(
    content_change_id: ContentChangeId, body: RejectBody, caller: CurrentCaller, partners: Partners
) -> ContentDecision:
    response = await partners.DecideContentChange(
        pb.DecideContentChangeRequest(
            content_change_id=str(content_change_id), approve=False, note=body.reason
        ),
        metadata=caller.metadata,
    )
    return ContentDecision(
        content_change=ContentChange.from_proto(response.content_change), product=None
    )
