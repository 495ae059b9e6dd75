"""The partners operator routes: `/v1/operator/partners/…` (stores, products, check-ins, bank
details, escalations, content changes).

Every route forwards the caller's token; the partners service decides.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from guichet.partners.v1 import partners_pb2 as pb

from services.gateway.auth import CurrentCaller
from services.gateway.fields import Date
from services.gateway.openapi import errors
from services.gateway.portals.partners.common import (
    _DOCUMENT_RESPONSE,
    OPERATOR,
    OPERATOR_TAG,
    PARTNERS_SERVICE,
    ChangeId,
    ContentChangeId,
    OrderId,
    Partners,
    StoreId,
    _document,
)
from services.gateway.portals.partners.menu_schemas import (
    ContentChange,
    ContentDecision,
    NoteBody,
    Product,
    ProductBody,
)
from services.gateway.portals.partners.order_schemas import (
    CancelResult,
    Escalation,
    EscalationPage,
    Order,
    RefundBody,
)
from services.gateway.portals.partners.schemas import (
    BankDetailChange,
    BankDetailChangePage,
    BankDetailChangeStatus,
    EscalationStatus,
    MissingCheckIn,
    MissingCheckInPage,
    RegisterStoreBody,
    RejectBody,
    Store,
)
from services.gateway.rpc import (
    Operations,
    Page,
    one,
    operation_id,
    page_of,
)

router = APIRouter(tags=[OPERATOR_TAG], generate_unique_id_function=operation_id)
ops = Operations(router, PARTNERS_SERVICE, Partners)

# --- operators ---------------------------------------------------------------------------------


@ops.post(
    f"{OPERATOR}/stores",
    rpc="RegisterStore",
    answer=one(Store, "store"),
    summary="Open the back office of a delivery_partner organisation (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def register_store(body: RegisterStoreBody) -> pb.RegisterStoreRequest:
    return pb.RegisterStoreRequest(
        store_id=str(body.store_id),
        operations_email=body.operations_email,
        phone=body.phone or "",
        timezone=body.timezone or "",
        currency=body.currency or "",
    )


@ops.post(
    f"{OPERATOR}/stores/{{store_id}}/products",
    rpc="CreateProduct",
    answer=one(Product, "product"),
    summary="Add a product to a store's menu (onboarding)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404),
)
def create_product(store_id: StoreId, body: ProductBody) -> pb.CreateProductRequest:
    return pb.CreateProductRequest(
        store_id=str(store_id),
        name=body.name,
        description=body.description,
        price_cents=body.price_cents,
    )


@ops.get(
    f"{OPERATOR}/check-ins/missing",
    rpc="ListStoresNotCheckedIn",
    answer=page_of(MissingCheckInPage, MissingCheckIn, "stores"),
    summary="Stores without a check-in on a day (default: each store's own today)",
    responses=errors(400, 401, 403),
)
def stores_not_checked_in(
    page: Page, day: Annotated[Date | None, Query(description="YYYY-MM-DD")] = None
) -> pb.ListStoresNotCheckedInRequest:
    return pb.ListStoresNotCheckedInRequest(day=day.isoformat() if day else "", page=page)


@ops.get(
    f"{OPERATOR}/bank-detail-changes",
    rpc="ListBankDetailChanges",
    answer=page_of(BankDetailChangePage, BankDetailChange, "changes"),
    summary="Bank-detail changes of every store, by status (e.g. proof_submitted: to review)",
    responses=errors(400, 401, 403),
)
def review_bank_detail_changes(
    page: Page,
    change_status: Annotated[
        BankDetailChangeStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> pb.ListBankDetailChangesRequest:
    return pb.ListBankDetailChangesRequest(
        status=(
            change_status.to_proto() if change_status else pb.BANK_DETAIL_CHANGE_STATUS_UNSPECIFIED
        ),
        page=page,
    )


@router.get(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/proof",
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


@ops.post(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/approve",
    rpc="DecideBankDetailChange",
    answer=one(BankDetailChange, "change"),
    summary="Approve a change whose proof was checked: the new details apply now",
    responses=errors(400, 401, 403, 404, 409),
)
def approve_bank_detail_change(change_id: ChangeId) -> pb.DecideBankDetailChangeRequest:
    return pb.DecideBankDetailChangeRequest(change_id=str(change_id), approve=True)


@ops.post(
    f"{OPERATOR}/bank-detail-changes/{{change_id}}/reject",
    rpc="DecideBankDetailChange",
    answer=one(BankDetailChange, "change"),
    summary="Reject a change, saying why",
    responses=errors(400, 401, 403, 404, 409),
)
def reject_bank_detail_change(
    change_id: ChangeId, body: RejectBody
) -> pb.DecideBankDetailChangeRequest:
    return pb.DecideBankDetailChangeRequest(
        change_id=str(change_id), approve=False, reason=body.reason
    )


@ops.get(
    f"{OPERATOR}/escalations",
    rpc="ListEscalations",
    answer=page_of(EscalationPage, Escalation, "escalations"),
    summary="Out-of-stock escalations, oldest first (default: waiting on support)",
    responses=errors(400, 401, 403),
)
def list_escalations(
    page: Page,
    escalation_status: Annotated[
        EscalationStatus | None, Query(alias="status", description="Default: escalated.")
    ] = None,
) -> pb.ListEscalationsRequest:
    return pb.ListEscalationsRequest(
        status=(
            escalation_status.to_proto() if escalation_status else pb.ESCALATION_STATUS_UNSPECIFIED
        ),
        page=page,
    )


@router.post(
    f"{OPERATOR}/orders/{{order_id}}/cancel",
    summary="Cancel an escalated order (product unavailable); a paid order is refunded",
    responses=errors(400, 401, 403, 404, 409),
)
async def cancel_escalated_order(
    order_id: OrderId, caller: CurrentCaller, partners: Partners, body: NoteBody | None = None
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


@ops.post(
    f"{OPERATOR}/orders/{{order_id}}/refund",
    rpc="RefundOrder",
    answer=one(Order, "order"),
    summary="Refund what was paid for an order, with the reason and who funds it",
    responses=errors(400, 401, 403, 404, 409),
)
def refund_order(order_id: OrderId, body: RefundBody) -> pb.RefundOrderRequest:
    return pb.RefundOrderRequest(
        order_id=str(order_id), reason=body.reason, funded_by=body.funded_by.to_proto()
    )


@router.post(
    f"{OPERATOR}/content-changes/{{content_change_id}}/approve",
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
