"""The partners gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction, calls one domain function and maps the result. Workflow starts
are outbox rows written inside that transaction; after the commit the relay is woken. Two things
happen after a commit, best effort, because the database already holds the truth:

* a partner's message opens its support ticket at once, with the partner's own token (support
  answers partners' messages for signed-in partners); if support does not answer, the message
  stays `pending_ticket` and the OpenPartnerTicket workflow retries later;
* the escalation workflow is woken by a signal when the answer or support's decision is recorded
  (a lost signal only delays the step to its deadline, where the workflow re-reads the database).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from guichet.support.v1 import support_pb2_grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from services.kit.auth import current_principal
from services.kit.grpcclient import create_channel
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.partners import contract, domain
from services.partners.models import (
    BankDetailChange,
    CheckIn,
    ContentChange,
    CourierReport,
    Escalation,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Product,
    Promotion,
    ProofDocument,
    Store,
    SupportMessage,
    outbox as outbox_table,
)
from services.partners.settings import PartnersSettings
from services.partners.support_link import open_support_ticket

log = logging.getLogger(__name__)

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock = Callable[[], datetime]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PartnersService"].full_name

# --- enum mapping (domain strings ↔ proto values) ---------------------------------------------

ORDER_STATUS: dict[str, pb.OrderStatus.ValueType] = {
    "accepted": pb.ORDER_STATUS_ACCEPTED,
    "collected": pb.ORDER_STATUS_COLLECTED,
    "delivered": pb.ORDER_STATUS_DELIVERED,
    "cancelled": pb.ORDER_STATUS_CANCELLED,
    "refunded": pb.ORDER_STATUS_REFUNDED,
}
FUNDER: dict[str, pb.RefundFunder.ValueType] = {
    "platform": pb.REFUND_FUNDER_PLATFORM,
    "partner": pb.REFUND_FUNDER_PARTNER,
}
ITEM_STATUS: dict[str, pb.OrderItemStatus.ValueType] = {
    "active": pb.ORDER_ITEM_STATUS_ACTIVE,
    "out_of_stock": pb.ORDER_ITEM_STATUS_OUT_OF_STOCK,
    "replaced": pb.ORDER_ITEM_STATUS_REPLACED,
}
PAYMENT_KIND: dict[str, pb.PaymentKind.ValueType] = {
    "payment": pb.PAYMENT_KIND_PAYMENT,
    "refund": pb.PAYMENT_KIND_REFUND,
}
ESCALATION_STATUS: dict[str, pb.EscalationStatus.ValueType] = {
    "awaiting_answer": pb.ESCALATION_STATUS_AWAITING_ANSWER,
    "accepted": pb.ESCALATION_STATUS_ACCEPTED,
    "item_replaced": pb.ESCALATION_STATUS_ITEM_REPLACED,
    "escalated": pb.ESCALATION_STATUS_ESCALATED,
    "cancelled": pb.ESCALATION_STATUS_CANCELLED,
}
ESCALATION_ANSWER: dict[str, pb.EscalationAnswer.ValueType] = {
    "accepted": pb.ESCALATION_ANSWER_ACCEPTED,
    "refused": pb.ESCALATION_ANSWER_REFUSED,
    "none": pb.ESCALATION_ANSWER_NONE,
}
COURIER_REASON: dict[str, pb.CourierReportReason.ValueType] = {
    "late": pb.COURIER_REPORT_REASON_LATE,
    "behaviour": pb.COURIER_REPORT_REASON_BEHAVIOUR,
    "damaged_order": pb.COURIER_REPORT_REASON_DAMAGED_ORDER,
    "other": pb.COURIER_REPORT_REASON_OTHER,
}
PROMOTION_KIND: dict[str, pb.PromotionKind.ValueType] = {
    "percent_off": pb.PROMOTION_KIND_PERCENT_OFF,
    "amount_off": pb.PROMOTION_KIND_AMOUNT_OFF,
    "free_delivery": pb.PROMOTION_KIND_FREE_DELIVERY,
}
PROMOTION_STATUS: dict[str, pb.PromotionStatus.ValueType] = {
    "draft": pb.PROMOTION_STATUS_DRAFT,
    "configured": pb.PROMOTION_STATUS_CONFIGURED,
    "active": pb.PROMOTION_STATUS_ACTIVE,
    "ended": pb.PROMOTION_STATUS_ENDED,
}
CATEGORY: dict[str, pb.SupportCategory.ValueType] = {
    "content_changes": pb.SUPPORT_CATEGORY_CONTENT_CHANGES,
    "bank_details": pb.SUPPORT_CATEGORY_BANK_DETAILS,
    "invoices_and_orders": pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
    "other": pb.SUPPORT_CATEGORY_OTHER,
}
MESSAGE_STATUS: dict[str, pb.SupportMessageStatus.ValueType] = {
    "pending_ticket": pb.SUPPORT_MESSAGE_STATUS_PENDING_TICKET,
    "ticket_opened": pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED,
}
CONTENT_STATUS: dict[str, pb.ContentChangeStatus.ValueType] = {
    "pending": pb.CONTENT_CHANGE_STATUS_PENDING,
    "applied": pb.CONTENT_CHANGE_STATUS_APPLIED,
    "rejected": pb.CONTENT_CHANGE_STATUS_REJECTED,
}
BANK_STATUS: dict[str, pb.BankDetailChangeStatus.ValueType] = {
    "awaiting_proof": pb.BANK_DETAIL_CHANGE_STATUS_AWAITING_PROOF,
    "proof_submitted": pb.BANK_DETAIL_CHANGE_STATUS_PROOF_SUBMITTED,
    "approved": pb.BANK_DETAIL_CHANGE_STATUS_APPROVED,
    "rejected": pb.BANK_DETAIL_CHANGE_STATUS_REJECTED,
}


_NAMES: dict[int, dict[int, str]] = {}


def _name_of(table: dict[str, Any], value: int) -> str:
    """The domain's name for a proto enum value: "" for UNSPECIFIED, a non-name when unknown
    (the domain then refuses it, naming the field)."""
    names = _NAMES.get(id(table))
    if names is None:
        names = _NAMES[id(table)] = {int(proto): name for name, proto in table.items()}
    found = names.get(value)
    if found is not None:
        return found
    return "" if value == 0 else f"#{value}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime | None) -> Timestamp | None:
    """An aware datetime as a Timestamp (cheaper than Timestamp.FromDatetime: lists map many)."""
    if moment is None:
        return None
    seconds = math.floor(moment.timestamp())
    return Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)


def _time(message: Any, name: str) -> datetime | None:
    """An optional Timestamp field as an aware datetime (None when unset); exact to the
    microsecond, and cheaper than Timestamp.ToDatetime (bulk imports convert many)."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    moment = datetime.fromtimestamp(value.seconds, UTC)
    return moment.replace(microsecond=value.nanos // 1000) if value.nanos else moment


def _micros(message: Any, name: str) -> int | None:
    """An optional Timestamp field as microseconds since the epoch (for bulk imports)."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    return int(value.seconds) * 1_000_000 + int(value.nanos) // 1000


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


# --- resources to proto ------------------------------------------------------------------------


def store_to_proto(store: Store) -> pb.Store:
    return pb.Store(
        id=str(store.id),
        name=store.name,
        operations_email=store.operations_email,
        phone=store.phone or "",
        timezone=store.timezone,
        currency=store.currency,
        iban_masked=domain.mask_iban(store.iban),
        bic=store.bic or "",
        account_holder=store.account_holder or "",
        create_time=_ts(store.created_at),
    )


def product_to_proto(product: Product, currency: str = "") -> pb.Product:
    return pb.Product(
        id=str(product.id),
        store_id=str(product.store_id),
        name=product.name,
        description=product.description,
        price_cents=product.price_cents,
        currency=currency,
        active=product.active,
        reactivate_time=_ts(product.reactivate_at),
        deactivation_reason=product.deactivation_reason or "",
        update_time=_ts(product.updated_at),
    )


def order_to_proto(order: Order | Row[Any]) -> pb.Order:
    """One line of the lists, from an ORM order or a row of `ORDER_LIST_COLUMNS`."""
    return pb.Order(
        id=str(order.id),
        store_id=str(order.store_id),
        code=order.code,
        status=ORDER_STATUS[order.status],
        create_time=_ts(order.created_at),
        close_time=_ts(order.closed_at),
        total_cents=order.total_cents,
        currency=order.currency,
        payment_made=order.paid_cents > 0,
        cancellation_reason=order.cancellation_reason or "",
        refund_reason=order.refund_reason or "",
        refund_funded_by=FUNDER.get(order.refund_funded_by or "", pb.REFUND_FUNDER_UNSPECIFIED),
        escalation_status=ESCALATION_STATUS.get(
            order.escalation_status or "", pb.ESCALATION_STATUS_UNSPECIFIED
        ),
    )


def item_to_proto(item: OrderItem) -> pb.OrderItem:
    return pb.OrderItem(
        id=str(item.id),
        product_id=str(item.product_id or ""),
        name=item.name,
        unit_price_cents=item.unit_price_cents,
        quantity=item.quantity,
        status=ITEM_STATUS[item.status],
        replaces_item_id=str(item.replaces_item_id or ""),
    )


def payment_to_proto(payment: Payment) -> pb.Payment:
    return pb.Payment(
        id=str(payment.id),
        kind=PAYMENT_KIND[payment.kind],
        amount_cents=payment.amount_cents,
        time=_ts(payment.created_at),
        reason=payment.reason or "",
        funded_by=FUNDER.get(payment.funded_by or "", pb.REFUND_FUNDER_UNSPECIFIED),
        reference=payment.reference or "",
    )


def event_to_proto(event: OrderEvent) -> pb.OrderEvent:
    return pb.OrderEvent(
        id=event.id,
        time=_ts(event.at),
        kind=event.kind,
        actor=event.actor,
        detail={key: str(value) for key, value in event.detail.items()},
    )


def escalation_to_proto(
    escalation: Escalation,
    *,
    order_code: str = "",
    product_name: str = "",
    ticket_id: str = "",
) -> pb.Escalation:
    return pb.Escalation(
        order_id=str(escalation.order_id),
        store_id=str(escalation.store_id),
        order_code=order_code,
        status=ESCALATION_STATUS[escalation.status],
        answer=ESCALATION_ANSWER.get(escalation.answer or "", pb.ESCALATION_ANSWER_UNSPECIFIED),
        item_id=str(escalation.item_id),
        product_id=str(escalation.product_id),
        product_name=product_name,
        answer_deadline=_ts(escalation.answer_deadline),
        support_deadline=_ts(escalation.support_deadline),
        replacement_product_id=str(escalation.replacement_product_id or ""),
        replacement_quantity=escalation.replacement_quantity or 0,
        support_message_id=str(escalation.support_message_id or ""),
        ticket_id=ticket_id,
        cancelled_by=escalation.cancelled_by or "",
        refunded=escalation.refunded,
        create_time=_ts(escalation.created_at),
    )


def escalation_view_to_proto(view: domain.EscalationView) -> pb.Escalation:
    return escalation_to_proto(
        view.escalation,
        order_code=view.order_code,
        product_name=view.product_name,
        ticket_id=view.ticket_id,
    )


def courier_report_to_proto(report: CourierReport) -> pb.CourierReport:
    return pb.CourierReport(
        id=str(report.id),
        order_id=str(report.order_id),
        reason=COURIER_REASON[report.reason],
        comment=report.comment,
        create_time=_ts(report.created_at),
    )


def order_detail_to_proto(view: domain.OrderView) -> pb.OrderDetail:
    order = view.order
    escalation = None
    if view.escalation is not None:
        escalation = escalation_to_proto(
            view.escalation,
            order_code=order.code,
            product_name=view.product_names.get(view.escalation.product_id, ""),
        )
    return pb.OrderDetail(
        order=order_to_proto(order),
        customer_name=order.customer_name,
        customer_phone=order.customer_phone,
        courier_name=order.courier_name,
        courier_phone=order.courier_phone,
        items=[item_to_proto(i) for i in view.items],
        payments=[payment_to_proto(p) for p in view.payments],
        events=[event_to_proto(e) for e in view.events],
        escalation=escalation,
        courier_report=(
            courier_report_to_proto(view.courier_report) if view.courier_report else None
        ),
    )


def check_in_to_proto(row: CheckIn) -> pb.CheckIn:
    return pb.CheckIn(
        store_id=str(row.store_id),
        day=row.day.isoformat(),
        time=_ts(row.checked_in_at),
        user_id=row.user_id,
    )


def promotion_to_proto(promotion: Promotion, now: datetime) -> pb.Promotion:
    return pb.Promotion(
        id=str(promotion.id),
        store_id=str(promotion.store_id),
        name=promotion.name,
        kind=PROMOTION_KIND[promotion.kind],
        status=PROMOTION_STATUS[domain.promotion_status(promotion, now)],
        percent_off=promotion.percent_off or 0,
        amount_off_cents=promotion.amount_off_cents or 0,
        min_order_cents=promotion.min_order_cents,
        product_ids=[str(p) for p in promotion.product_ids],
        start_time=_ts(promotion.starts_at),
        end_time=_ts(promotion.ends_at),
        create_time=_ts(promotion.created_at),
        activate_time=_ts(promotion.activated_at),
    )


def message_to_proto(message: SupportMessage, store_name: str = "") -> pb.SupportMessage:
    return pb.SupportMessage(
        id=str(message.id),
        store_id=str(message.store_id),
        category=CATEGORY[message.category],
        subject=message.subject,
        body=message.body,
        reply_to_email=message.reply_to_email,
        order_code=message.order_code or "",
        period=message.period or "",
        status=MESSAGE_STATUS[message.status],
        ticket_id=message.ticket_id or "",
        create_time=_ts(message.created_at),
        subject_kind=message.subject_kind,
        subject_id=message.subject_id,
        store_name=store_name,
        last_error=message.last_error or "",
    )


def content_change_to_proto(change: ContentChange, message: SupportMessage) -> pb.ContentChange:
    return pb.ContentChange(
        id=str(change.id),
        store_id=str(change.store_id),
        product_id=str(change.product_id or ""),
        proposed_name=change.proposed_name or "",
        proposed_description=change.proposed_description or "",
        proposed_price_cents=change.proposed_price_cents or 0,
        note=change.note,
        status=CONTENT_STATUS[change.status],
        support_message_id=str(change.support_message_id),
        ticket_status=MESSAGE_STATUS[message.status],
        ticket_id=message.ticket_id or "",
        decision_note=change.decision_note or "",
        create_time=_ts(change.created_at),
        decide_time=_ts(change.decided_at),
    )


def proof_to_proto(document: ProofDocument) -> pb.ProofDocument:
    return pb.ProofDocument(
        filename=document.filename,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
        sha256=document.sha256,
        upload_time=_ts(document.uploaded_at),
    )


def bank_change_to_proto(view: domain.BankChangeView, *, full_iban: bool) -> pb.BankDetailChange:
    change: BankDetailChange = view.change
    return pb.BankDetailChange(
        id=str(change.id),
        store_id=str(change.store_id),
        iban=change.iban if full_iban else "",
        iban_masked=domain.mask_iban(change.iban),
        bic=change.bic,
        account_holder=change.account_holder,
        status=BANK_STATUS[change.status],
        proof=proof_to_proto(view.proof) if view.proof is not None else None,
        decision_reason=change.decision_reason or "",
        create_time=_ts(change.created_at),
        decide_time=_ts(change.decided_at),
    )


# --- the servicer ------------------------------------------------------------------------------


class PartnersServicer(partners_pb2_grpc.PartnersServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        settings: PartnersSettings,
        identity: identity_pb2_grpc.IdentityServiceStub,
        support: support_pb2_grpc.SupportServiceStub | None,
        relay: OutboxRelay | None,
        connect: Callable[[], Awaitable[Client]],
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        # Autocommit sessions for the hot read-only lists: one statement, no BEGIN/COMMIT.
        self._reads = reads or sessions
        self._settings = settings
        self._identity = identity
        self._support = support
        self._relay = relay
        self._connect = connect
        self._temporal: Client | None = None
        self._clock = clock

    # --- after the commit ----------------------------------------------------------------------

    def _started(self) -> None:
        """After a commit that recorded a workflow start: let the relay start it now."""
        if self._relay is not None:
            self._relay.wake()

    async def _signal(self, workflow_id: str, signal: str) -> None:
        """Best effort: the workflow re-reads the database at its deadline anyway."""
        try:
            client = self._temporal
            if client is None:
                client = await asyncio.wait_for(
                    self._connect(), timeout=self._settings.signal_timeout_seconds
                )
                self._temporal = client
            await asyncio.wait_for(
                client.get_workflow_handle(workflow_id).signal(signal),
                timeout=self._settings.signal_timeout_seconds,
            )
        except Exception as error:  # Temporal away, or the workflow not started yet.
            log.warning(
                "signal not delivered (the workflow reconciles at its deadline)",
                extra={"workflow_id": workflow_id, "signal": signal, "error": str(error)},
            )

    async def _open_ticket_now(self, message_id: uuid.UUID) -> SupportMessage:
        """Opens the message's ticket in support with the partner's own token; on failure the
        message stays pending_ticket (with the reason) and the workflow retries later."""
        ticket_id = ""
        error = ""
        async with self._sessions.begin() as session:
            message = await session.get(SupportMessage, message_id)
            assert message is not None
        if self._support is None:
            error = "support is not configured"
        else:
            try:
                ticket_id = await open_support_ticket(
                    self._support,
                    category=message.category,
                    store_id=str(message.store_id),
                    subject=message.subject,
                    body=message.body,
                    reply_to_email=message.reply_to_email,
                    idempotency_key=str(message.id),
                    seconds=3.0,
                )
            except (grpc.aio.AioRpcError, LookupError) as failure:
                error = _describe(failure)
        async with self._sessions.begin() as session:
            if ticket_id:
                return await domain.attach_ticket(
                    session=session, now=self._clock(), message_id=message_id, ticket_id=ticket_id
                )
            log.warning(
                "support ticket not opened yet",
                extra={"message_id": str(message_id), "error": error},
            )
            return await domain.note_ticket_error(
                session=session, message_id=message_id, error=error
            )

    # --- stores --------------------------------------------------------------------------------

    async def RegisterStore(
        self, request: pb.RegisterStoreRequest, context: Context
    ) -> pb.RegisterStoreResponse:
        organisation = await self._organisation(request.store_id)
        async with self._sessions.begin() as session:
            store = await domain.register_store(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                organisation=organisation,
                operations_email=request.operations_email,
                phone=request.phone,
                timezone=request.timezone,
                currency=request.currency,
            )
        return pb.RegisterStoreResponse(store=store_to_proto(store))

    async def _organisation(self, store_id: str) -> domain.OrganisationInfo | None:
        """Identity's word on the organisation (with the caller's token); None if unknown."""
        try:
            uuid.UUID(store_id)
        except ValueError:
            return None
        try:
            response = await self._identity.GetOrganisation(
                identity_pb2.GetOrganisationRequest(organisation_id=store_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        kind = identity_pb2.OrganisationKind.Name(response.organisation.kind)
        return domain.OrganisationInfo(
            name=response.organisation.name,
            kind=kind.removeprefix("ORGANISATION_KIND_").lower(),
        )

    async def GetStore(self, request: pb.GetStoreRequest, context: Context) -> pb.GetStoreResponse:
        async with self._sessions.begin() as session:
            store = await domain.get_store(
                session=session, actor=current_principal(), store_id=request.store_id
            )
        return pb.GetStoreResponse(store=store_to_proto(store))

    async def UpdateStoreSettings(
        self, request: pb.UpdateStoreSettingsRequest, context: Context
    ) -> pb.UpdateStoreSettingsResponse:
        async with self._sessions.begin() as session:
            store = await domain.update_store_settings(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                operations_email=request.operations_email,
                phone=request.phone,
            )
        return pb.UpdateStoreSettingsResponse(store=store_to_proto(store))

    # --- menu ----------------------------------------------------------------------------------

    async def _currency(self, session: AsyncSession, store_id: uuid.UUID) -> str:
        store = await session.get(Store, store_id)
        return store.currency if store is not None else ""

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        async with self._sessions.begin() as session:
            product = await domain.create_product(
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
            page = await domain.list_products(
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
            product = await domain.set_product_price(
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
            product = await domain.deactivate_product(
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
            product = await domain.activate_product(
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
            view = await domain.submit_content_change(
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
            page = await domain.list_content_changes(
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
            view, product = await domain.decide_content_change(
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

    # --- orders from the platform --------------------------------------------------------------

    async def SubmitOrder(
        self, request: pb.SubmitOrderRequest, context: Context
    ) -> pb.SubmitOrderResponse:
        async with self._sessions.begin() as session:
            view, created = await domain.submit_order(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                code=request.code,
                items=[domain.SubmittedItem(i.product_id, i.quantity) for i in request.items],
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
            order = await domain.update_order_status(
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
            order = await domain.record_payment(
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
            order = await domain.refund_order(
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
        orders = [
            domain.ImportedOrder(
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
            imported, skipped = await domain.import_orders(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                orders=orders,
            )
        return pb.ImportOrdersResponse(imported=imported, skipped=skipped)

    # --- orders: the partner's views -----------------------------------------------------------

    async def ListOrdersInProgress(
        self, request: pb.ListOrdersInProgressRequest, context: Context
    ) -> pb.ListOrdersInProgressResponse:
        async with self._reads() as session:
            page = await domain.list_orders_in_progress(
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
            page = await domain.list_order_history(
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
            view = await domain.get_order(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                order_id=request.order_id,
            )
        return pb.GetOrderResponse(order=order_detail_to_proto(view))

    # --- out of stock --------------------------------------------------------------------------

    async def ReportOutOfStock(
        self, request: pb.ReportOutOfStockRequest, context: Context
    ) -> pb.ReportOutOfStockResponse:
        async with self._sessions.begin() as session:
            view = await domain.report_out_of_stock(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                item_id=request.item_id,
                note=request.note,
            )
        self._started()
        return pb.ReportOutOfStockResponse(order=order_detail_to_proto(view))

    async def AnswerOutOfStock(
        self, request: pb.AnswerOutOfStockRequest, context: Context
    ) -> pb.AnswerOutOfStockResponse:
        async with self._sessions.begin() as session:
            view = await domain.answer_out_of_stock(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                customer_accepted=request.customer_accepted,
                replacement_product_id=request.replacement_product_id,
                replacement_quantity=request.replacement_quantity,
                note=request.note,
            )
        await self._signal(
            contract.escalation_workflow_id(str(view.order.id)), contract.PARTNER_ANSWERED_SIGNAL
        )
        return pb.AnswerOutOfStockResponse(order=order_detail_to_proto(view))

    async def ListEscalations(
        self, request: pb.ListEscalationsRequest, context: Context
    ) -> pb.ListEscalationsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_escalations(
                session=session,
                actor=current_principal(),
                status=_name_of(ESCALATION_STATUS, request.status),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListEscalationsResponse(
            escalations=[escalation_view_to_proto(v) for v in page.items],
            page=_page(page.next_page_token),
        )

    async def CancelEscalatedOrder(
        self, request: pb.CancelEscalatedOrderRequest, context: Context
    ) -> pb.CancelEscalatedOrderResponse:
        actor = current_principal()
        async with self._sessions.begin() as session:
            escalation, order = await domain.cancel_escalated_order(
                session=session,
                settings=self._settings,
                actor=actor,
                now=self._clock(),
                order_id=request.order_id,
                note=request.note,
            )
            view = await domain.escalation_view(session, escalation)
        if not actor.is_service:
            await self._signal(
                contract.escalation_workflow_id(str(order.id)), contract.SUPPORT_DECIDED_SIGNAL
            )
        return pb.CancelEscalatedOrderResponse(
            escalation=escalation_view_to_proto(view), order=order_to_proto(order)
        )

    async def _step(
        self,
        step: Callable[..., Any],
        order_id: str,
        **extra: Any,
    ) -> pb.Escalation:
        async with self._sessions.begin() as session:
            escalation = await step(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                order_id=order_id,
                **extra,
            )
            view = await domain.escalation_view(session, escalation)
        self._started()
        return escalation_view_to_proto(view)

    async def DeactivateEscalatedProduct(
        self, request: pb.DeactivateEscalatedProductRequest, context: Context
    ) -> pb.DeactivateEscalatedProductResponse:
        escalation = await self._step(domain.deactivate_escalated_product, request.order_id)
        return pb.DeactivateEscalatedProductResponse(escalation=escalation)

    async def SettleOutOfStockAnswer(
        self, request: pb.SettleOutOfStockAnswerRequest, context: Context
    ) -> pb.SettleOutOfStockAnswerResponse:
        escalation = await self._step(domain.settle_out_of_stock_answer, request.order_id)
        return pb.SettleOutOfStockAnswerResponse(escalation=escalation)

    async def ReplaceEscalatedItem(
        self, request: pb.ReplaceEscalatedItemRequest, context: Context
    ) -> pb.ReplaceEscalatedItemResponse:
        escalation = await self._step(domain.replace_escalated_item, request.order_id)
        return pb.ReplaceEscalatedItemResponse(escalation=escalation)

    async def EscalateToSupport(
        self, request: pb.EscalateToSupportRequest, context: Context
    ) -> pb.EscalateToSupportResponse:
        escalation = await self._step(
            domain.escalate_to_support,
            request.order_id,
            support_deadline=_time(request, "support_deadline"),
        )
        return pb.EscalateToSupportResponse(escalation=escalation)

    # --- couriers ------------------------------------------------------------------------------

    async def ReportCourier(
        self, request: pb.ReportCourierRequest, context: Context
    ) -> pb.ReportCourierResponse:
        async with self._sessions.begin() as session:
            report = await domain.report_courier(
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
            order = await domain.contact_courier(
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

    # --- check-ins -----------------------------------------------------------------------------

    async def CheckIn(self, request: pb.CheckInRequest, context: Context) -> pb.CheckInResponse:
        async with self._sessions.begin() as session:
            row = await domain.check_in(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
            )
        return pb.CheckInResponse(check_in=check_in_to_proto(row))

    async def ListCheckIns(
        self, request: pb.ListCheckInsRequest, context: Context
    ) -> pb.ListCheckInsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_check_ins(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCheckInsResponse(
            check_ins=[check_in_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def ListStoresNotCheckedIn(
        self, request: pb.ListStoresNotCheckedInRequest, context: Context
    ) -> pb.ListStoresNotCheckedInResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_stores_not_checked_in(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                day=request.day,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListStoresNotCheckedInResponse(
            stores=[
                pb.StoreCheckInStatus(
                    store=store_to_proto(m.store),
                    day=m.day.isoformat(),
                    last_check_in_time=_ts(m.last_check_in),
                )
                for m in page.items
            ],
            page=_page(page.next_page_token),
        )

    # --- promotions ----------------------------------------------------------------------------

    async def CreatePromotion(
        self, request: pb.CreatePromotionRequest, context: Context
    ) -> pb.CreatePromotionResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            promotion = await domain.create_promotion(
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
            promotion = await domain.configure_promotion(
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
            promotion = await domain.activate_promotion(
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
            promotion = await domain.get_promotion(
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
            page = await domain.list_promotions(
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
            message = await domain.report_promotion_problem(
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

    # --- messages to support -------------------------------------------------------------------

    async def SendSupportMessage(
        self, request: pb.SendSupportMessageRequest, context: Context
    ) -> pb.SendSupportMessageResponse:
        async with self._sessions.begin() as session:
            message = await domain.send_support_message(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                category=_name_of(CATEGORY, request.category),
                subject=request.subject,
                body=request.body,
                order_code=request.order_code,
                period=request.period,
                reply_to_email=request.reply_to_email,
            )
        self._started()
        message = await self._open_ticket_now(message.id)
        return pb.SendSupportMessageResponse(message=message_to_proto(message))

    async def ListSupportMessages(
        self, request: pb.ListSupportMessagesRequest, context: Context
    ) -> pb.ListSupportMessagesResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_support_messages(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListSupportMessagesResponse(
            messages=[message_to_proto(m) for m in page.items], page=_page(page.next_page_token)
        )

    async def GetSupportMessage(
        self, request: pb.GetSupportMessageRequest, context: Context
    ) -> pb.GetSupportMessageResponse:
        async with self._sessions.begin() as session:
            view = await domain.get_support_message(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                message_id=request.message_id,
            )
        return pb.GetSupportMessageResponse(message=message_to_proto(view.message, view.store_name))

    async def RecordSupportTicket(
        self, request: pb.RecordSupportTicketRequest, context: Context
    ) -> pb.RecordSupportTicketResponse:
        async with self._sessions.begin() as session:
            view = await domain.record_support_ticket(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                message_id=request.message_id,
                ticket_id=request.ticket_id,
                error=request.error,
            )
        return pb.RecordSupportTicketResponse(
            message=message_to_proto(view.message, view.store_name)
        )

    # --- bank details --------------------------------------------------------------------------

    async def SubmitBankDetailChange(
        self, request: pb.SubmitBankDetailChangeRequest, context: Context
    ) -> pb.SubmitBankDetailChangeResponse:
        async with self._sessions.begin() as session:
            view = await domain.submit_bank_detail_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                iban=request.iban,
                bic=request.bic,
                account_holder=request.account_holder,
            )
        return pb.SubmitBankDetailChangeResponse(change=self._bank(view))

    def _bank(self, view: domain.BankChangeView) -> pb.BankDetailChange:
        return bank_change_to_proto(view, full_iban=domain.is_operator(current_principal()))

    async def UploadBankDetailProof(
        self, request: pb.UploadBankDetailProofRequest, context: Context
    ) -> pb.UploadBankDetailProofResponse:
        async with self._sessions.begin() as session:
            view = await domain.upload_bank_detail_proof(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                change_id=request.change_id,
                filename=request.filename,
                content_type=request.content_type,
                content=request.content,
            )
        return pb.UploadBankDetailProofResponse(change=self._bank(view))

    async def ListBankDetailChanges(
        self, request: pb.ListBankDetailChangesRequest, context: Context
    ) -> pb.ListBankDetailChangesResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_bank_detail_changes(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                status=_name_of(BANK_STATUS, request.status),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListBankDetailChangesResponse(
            changes=[self._bank(v) for v in page.items], page=_page(page.next_page_token)
        )

    async def GetBankDetailProof(
        self, request: pb.GetBankDetailProofRequest, context: Context
    ) -> pb.GetBankDetailProofResponse:
        async with self._sessions.begin() as session:
            document = await domain.get_bank_detail_proof(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                change_id=request.change_id,
            )
        return pb.GetBankDetailProofResponse(
            document=proof_to_proto(document), content=document.content
        )

    async def DecideBankDetailChange(
        self, request: pb.DecideBankDetailChangeRequest, context: Context
    ) -> pb.DecideBankDetailChangeResponse:
        async with self._sessions.begin() as session:
            view = await domain.decide_bank_detail_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                change_id=request.change_id,
                approve=request.approve,
                reason=request.reason,
            )
        return pb.DecideBankDetailChangeResponse(change=self._bank(view))

    # --- timers --------------------------------------------------------------------------------

    async def ReactivateScheduledProduct(
        self, request: pb.ReactivateScheduledProductRequest, context: Context
    ) -> pb.ReactivateScheduledProductResponse:
        async with self._sessions.begin() as session:
            product, reactivated = await domain.reactivate_scheduled_product(
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


# --- support ---------------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        detail = (error.details() or "").strip()
        return f"support answered {error.code().name}: {detail} (with the partner's token)"
    return f"{error} (with the partner's token)"


# --- wiring ------------------------------------------------------------------------------------


async def build(context: ServiceContext, *, clock: Clock = utcnow) -> Wiring:
    """Connects identity (JWKS, organisation look-ups) and support, and wires the servicer."""
    settings = context.settings
    if not isinstance(settings, PartnersSettings):
        raise TypeError("partners needs PartnersSettings")
    link: IdentityLink = connect_identity(settings)
    context.exit_stack.push_async_callback(link.close)
    support_channel = create_channel(
        settings.support_addr, default_timeout=settings.grpc_default_timeout, tokens=link.tokens
    )
    context.exit_stack.push_async_callback(support_channel.close)
    reads = async_sessionmaker(
        context.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
    servicer = PartnersServicer(
        sessions=context.sessions,
        reads=reads,
        settings=settings,
        identity=link.stub,
        support=support_pb2_grpc.SupportServiceStub(support_channel),
        relay=context.relay,
        connect=lambda: connect_temporal(settings),
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        partners_pb2_grpc.add_PartnersServiceServicer_to_server(servicer, server)

    return Wiring(register=register, service_names=[SERVICE_NAME], verifier=link.verifier)


SPEC = ServiceSpec(
    name="partners",
    settings_class=PartnersSettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)
