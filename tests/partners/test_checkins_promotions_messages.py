"""Daily check-ins (one per store and local day, even at once), the stores support sees without
one, promotions in three steps, and messages to support."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.partners.v1 import partners_pb2 as pb
from guichet.support.v1 import support_pb2

from services.kit.errors import RemoteProblem
from services.partners.domain.check_ins import local_day
from tests.partners.harness import Partners, eventually, fails


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _fields(error: grpc.aio.AioRpcError) -> set[str]:
    return {name for name, _ in RemoteProblem.from_rpc_error(error).violations}


def test_a_check_in_day_is_the_stores_own_day() -> None:
    late_evening_utc = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    assert local_day(late_evening_utc, "Europe/Paris").isoformat() == "2026-03-15"
    assert local_day(late_evening_utc, "America/Montreal").isoformat() == "2026-03-14"


async def test_a_double_check_in_cannot_both_win(partners: Partners) -> None:
    store = await partners.store(products=0)
    results = await asyncio.gather(
        *(
            partners.stub.CheckIn(pb.CheckInRequest(store_id=store.id), metadata=store.token)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.CheckInResponse)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1, results
    assert {e.code() for e in lost} == {grpc.StatusCode.ALREADY_EXISTS}
    listed = await partners.stub.ListCheckIns(
        pb.ListCheckInsRequest(store_id=store.id), metadata=store.token
    )
    assert [c.day for c in listed.check_ins] == [won[0].check_in.day]
    _, agent = await partners.operator()
    denied = await fails(
        partners.stub.CheckIn(pb.CheckInRequest(store_id=store.id), metadata=agent)
    )
    assert denied.code() == grpc.StatusCode.NOT_FOUND  # operators do not check in for a store


async def test_support_sees_the_stores_without_a_check_in(partners: Partners) -> None:
    present = await partners.store(products=0)
    absent = await partners.store(products=0)
    await partners.stub.CheckIn(pb.CheckInRequest(store_id=present.id), metadata=present.token)
    _, agent = await partners.operator()

    async def missing(day: str = "") -> dict[str, pb.StoreCheckInStatus]:
        found: dict[str, pb.StoreCheckInStatus] = {}
        token = ""
        while True:
            page = await partners.stub.ListStoresNotCheckedIn(
                pb.ListStoresNotCheckedInRequest(
                    day=day, page=common_pb2.PageRequest(page_size=100, page_token=token)
                ),
                metadata=agent,
            )
            found.update({s.store.id: s for s in page.stores})
            token = page.page.next_page_token
            if not token:
                return found

    today = await missing()
    assert absent.id in today and present.id not in today
    assert not today[absent.id].HasField("last_check_in_time")
    yesterday = (partners.clock() - timedelta(days=1)).date().isoformat()
    before = await missing(yesterday)
    assert {absent.id, present.id} <= set(before)
    assert before[present.id].HasField("last_check_in_time")
    denied = await fails(
        partners.stub.ListStoresNotCheckedIn(
            pb.ListStoresNotCheckedInRequest(), metadata=present.token
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = await fails(
        partners.stub.ListStoresNotCheckedIn(
            pb.ListStoresNotCheckedInRequest(day="2026-02-30"), metadata=agent
        )
    )
    assert _fields(bad) == {"day"}


async def test_a_promotion_is_made_in_three_steps(partners: Partners) -> None:
    store = await partners.store()
    draft = await partners.stub.CreatePromotion(
        pb.CreatePromotionRequest(
            store_id=store.id, name="-20 % pizzas", kind=pb.PROMOTION_KIND_PERCENT_OFF
        ),
        metadata=store.token,
    )
    promotion = draft.promotion
    assert promotion.status == pb.PROMOTION_STATUS_DRAFT
    early = await fails(
        partners.stub.ActivatePromotion(
            pb.ActivatePromotionRequest(store_id=store.id, promotion_id=promotion.id),
            metadata=store.token,
        )
    )
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    now = partners.clock()
    wrong = await fails(
        partners.stub.ConfigurePromotion(
            pb.ConfigurePromotionRequest(
                store_id=store.id,
                promotion_id=promotion.id,
                percent_off=95,
                amount_off_cents=100,
                product_ids=["not-an-id"],
                start_time=_stamp(now + timedelta(days=2)),
                end_time=_stamp(now + timedelta(days=1)),
            ),
            metadata=store.token,
        )
    )
    assert _fields(wrong) == {"percent_off", "amount_off_cents", "end_time", "product_ids[0]"}
    other = await partners.store()
    foreign = await fails(
        partners.stub.ConfigurePromotion(
            pb.ConfigurePromotionRequest(
                store_id=store.id,
                promotion_id=promotion.id,
                percent_off=20,
                product_ids=[other.products[0].id],
                start_time=_stamp(now - timedelta(hours=1)),
                end_time=_stamp(now + timedelta(days=7)),
            ),
            metadata=store.token,
        )
    )
    assert _fields(foreign) == {"product_ids[0]"}
    configured = await partners.stub.ConfigurePromotion(
        pb.ConfigurePromotionRequest(
            store_id=store.id,
            promotion_id=promotion.id,
            percent_off=20,
            product_ids=[store.products[0].id, store.products[1].id],
            start_time=_stamp(now - timedelta(hours=1)),
            end_time=_stamp(now + timedelta(days=7)),
        ),
        metadata=store.token,
    )
    assert configured.promotion.status == pb.PROMOTION_STATUS_CONFIGURED
    active = await partners.stub.ActivatePromotion(
        pb.ActivatePromotionRequest(store_id=store.id, promotion_id=promotion.id),
        metadata=store.token,
    )
    assert active.promotion.status == pb.PROMOTION_STATUS_ACTIVE
    frozen = await fails(
        partners.stub.ConfigurePromotion(
            pb.ConfigurePromotionRequest(store_id=store.id, promotion_id=promotion.id),
            metadata=store.token,
        )
    )
    assert frozen.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A draft that never went live is not listed among the active ones.
    await partners.stub.CreatePromotion(
        pb.CreatePromotionRequest(
            store_id=store.id, name="Livraison offerte", kind=pb.PROMOTION_KIND_FREE_DELIVERY
        ),
        metadata=store.token,
    )
    listed = await partners.stub.ListPromotions(
        pb.ListPromotionsRequest(store_id=store.id, status=pb.PROMOTION_STATUS_ACTIVE),
        metadata=store.token,
    )
    assert [p.id for p in listed.promotions] == [promotion.id]
    everything = await partners.stub.ListPromotions(
        pb.ListPromotionsRequest(store_id=store.id), metadata=store.token
    )
    assert len(everything.promotions) == 2
    # Once its end time has passed, an active promotion is listed as ended.
    partners.clock.offset = timedelta(days=8)
    try:
        ended = await partners.stub.ListPromotions(
            pb.ListPromotionsRequest(store_id=store.id, status=pb.PROMOTION_STATUS_ENDED),
            metadata=store.token,
        )
        assert [p.status for p in ended.promotions] == [pb.PROMOTION_STATUS_ENDED]
        none_active = await partners.stub.ListPromotions(
            pb.ListPromotionsRequest(store_id=store.id, status=pb.PROMOTION_STATUS_ACTIVE),
            metadata=store.token,
        )
        assert list(none_active.promotions) == []
    finally:
        partners.clock.offset = timedelta(0)
    hidden = await fails(
        partners.stub.GetPromotion(
            pb.GetPromotionRequest(store_id=other.id, promotion_id=promotion.id),
            metadata=store.token,
        )
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND


async def test_a_promotion_problem_goes_to_support(partners: Partners) -> None:
    store = await partners.store()
    draft = await partners.stub.CreatePromotion(
        pb.CreatePromotionRequest(
            store_id=store.id, name="Menu midi", kind=pb.PROMOTION_KIND_AMOUNT_OFF
        ),
        metadata=store.token,
    )
    reported = await partners.stub.ReportPromotionProblem(
        pb.ReportPromotionProblemRequest(
            store_id=store.id,
            promotion_id=draft.promotion.id,
            description="Impossible de choisir les produits",
            reply_to_email="chef@example.org",
        ),
        metadata=store.token,
    )
    message = reported.message
    assert message.category == pb.SUPPORT_CATEGORY_OTHER
    assert message.reply_to_email == "chef@example.org"
    assert message.status == pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED
    assert partners.support is not None
    ticket = await partners.support.GetTicket(
        support_pb2.GetTicketRequest(ticket_id=message.ticket_id), metadata=partners.admin
    )
    assert ticket.ticket.category_name == "Partner-Other"
    assert ticket.ticket.reply_to_email == "chef@example.org"


async def test_invoice_questions_name_an_order_or_a_period(partners: Partners) -> None:
    store = await partners.store()
    order = await partners.order(store)
    vague = await fails(
        partners.stub.SendSupportMessage(
            pb.SendSupportMessageRequest(
                store_id=store.id,
                category=pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
                subject="Facture",
                body="Montant incorrect",
            ),
            metadata=store.token,
        )
    )
    assert _fields(vague) == {"order_code", "period"}
    future = await fails(
        partners.stub.SendSupportMessage(
            pb.SendSupportMessageRequest(
                store_id=store.id,
                category=pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
                subject="Paiement",
                body="Manquant",
                period="2999-01",
            ),
            metadata=store.token,
        )
    )
    assert _fields(future) == {"period"}
    unknown = await fails(
        partners.stub.SendSupportMessage(
            pb.SendSupportMessageRequest(
                store_id=store.id,
                category=pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
                subject="Commande",
                body="?",
                order_code="NOT-MINE",
            ),
            metadata=store.token,
        )
    )
    assert _fields(unknown) == {"order_code"}
    bank = await fails(
        partners.stub.SendSupportMessage(
            pb.SendSupportMessageRequest(
                store_id=store.id,
                category=pb.SUPPORT_CATEGORY_BANK_DETAILS,
                subject="RIB",
                body="Nouveau RIB",
            ),
            metadata=store.token,
        )
    )
    assert _fields(bank) == {"category"}
    sent = await partners.stub.SendSupportMessage(
        pb.SendSupportMessageRequest(
            store_id=store.id,
            category=pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
            subject="Commande facturée deux fois",
            body="Voir la commande",
            order_code=order.order.code,
        ),
        metadata=store.token,
    )
    # No reply-to given: support answers the operations contact.
    assert sent.message.reply_to_email == f"ops.{store.id[:8]}@example.org"
    assert f"Order code: {order.order.code}" in sent.message.body
    assert sent.message.status == pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED
    listed = await partners.stub.ListSupportMessages(
        pb.ListSupportMessagesRequest(store_id=store.id), metadata=store.token
    )
    assert [m.id for m in listed.messages] == [sent.message.id]


async def test_a_message_waits_for_support_then_the_workflow_opens_it(
    partners: Partners,
) -> None:
    """Support has no contract for this store yet: the message is kept pending with the reason;
    the workflow tries again (with the worker's token) and the reason is kept up to date."""
    store = await partners.store(register=False)
    await partners.stub.RegisterStore(
        pb.RegisterStoreRequest(store_id=store.id, operations_email="ops@example.org"),
        metadata=partners.admin,
    )
    sent = await partners.stub.SendSupportMessage(
        pb.SendSupportMessageRequest(
            store_id=store.id, category=pb.SUPPORT_CATEGORY_OTHER, subject="Sacs", body="Pas reçu"
        ),
        metadata=store.token,
    )
    assert sent.message.status == pb.SUPPORT_MESSAGE_STATUS_PENDING_TICKET
    assert "contract" in sent.message.last_error
    assert sent.message.last_error.endswith("(with the partner's token)")

    async def retried() -> pb.SupportMessage | None:
        response = await partners.stub.GetSupportMessage(
            pb.GetSupportMessageRequest(message_id=sent.message.id), metadata=partners.worker
        )
        message: pb.SupportMessage = response.message
        return message if "worker" in message.last_error else None

    again = await eventually(retried, within=30)
    assert again.status == pb.SUPPORT_MESSAGE_STATUS_PENDING_TICKET
    assert again.last_error.startswith("support answered")
    assert again.last_error.endswith("(with the worker's token)")
