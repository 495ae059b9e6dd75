"""Stores and their menu on the real service: registration, access, prices, deactivation with a
timer that brings the product back, content changes through support."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.partners.v1 import partners_pb2 as pb
from guichet.support.v1 import support_pb2
from sqlalchemy import select

from services.kit.errors import RemoteProblem
from services.partners.models import outbox
from tests.identity.harness import DELIVERY_PARTNER, ERP_CUSTOMER
from tests.partners.harness import Partners, eventually, fails


def _stamp(moment: object) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)  # type: ignore[arg-type]
    return stamp


def _fields(error: grpc.aio.AioRpcError) -> set[str]:
    return {name for name, _ in RemoteProblem.from_rpc_error(error).violations}


async def test_only_a_delivery_partner_organisation_becomes_a_store(partners: Partners) -> None:
    # An id identity does not know, or knows as another kind, names no store to open: 404.
    erp = await partners.identity.organisation(ERP_CUSTOMER)
    for named in (erp, str(uuid.uuid4())):
        error = await fails(
            partners.stub.RegisterStore(
                pb.RegisterStoreRequest(store_id=named, operations_email="ops@example.org"),
                metadata=partners.admin,
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert _fields(error) == {"store_id"}

    org = await partners.identity.organisation(DELIVERY_PARTNER)
    error = await fails(
        partners.stub.RegisterStore(
            pb.RegisterStoreRequest(store_id=org, operations_email="nope", timezone="Mars/Base"),
            metadata=partners.admin,
        )
    )
    assert _fields(error) == {"operations_email", "timezone"}
    made = await partners.stub.RegisterStore(
        pb.RegisterStoreRequest(store_id=org, operations_email="Ops@Example.org", currency="mad"),
        metadata=partners.admin,
    )
    assert made.store.currency == "MAD"
    assert made.store.timezone == "Europe/Paris"
    again = await fails(
        partners.stub.RegisterStore(
            pb.RegisterStoreRequest(store_id=org, operations_email="ops@example.org"),
            metadata=partners.admin,
        )
    )
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_registering_a_store_is_for_ops_admins(partners: Partners) -> None:
    store = await partners.store(register=False)
    for metadata in (store.token, (await partners.operator("support_agent"))[1], partners.worker):
        error = await fails(
            partners.stub.RegisterStore(
                pb.RegisterStoreRequest(store_id=store.id, operations_email="a@example.org"),
                metadata=metadata,
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_store_is_invisible_to_other_stores(partners: Partners) -> None:
    mine = await partners.store()
    other = await partners.store()
    error = await fails(
        partners.stub.GetStore(pb.GetStoreRequest(store_id=other.id), metadata=mine.token)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Exactly what an unknown store answers: nothing tells that it exists.
    unknown = await fails(
        partners.stub.GetStore(
            pb.GetStoreRequest(store_id="00000000-0000-0000-0000-000000000001"),
            metadata=mine.token,
        )
    )
    assert (unknown.code(), unknown.details()) == (error.code(), error.details())
    # An operator reads any store; only its managers change its settings.
    _, agent = await partners.operator()
    seen = await partners.stub.GetStore(pb.GetStoreRequest(store_id=other.id), metadata=agent)
    assert seen.store.name == other.name
    denied = await fails(
        partners.stub.UpdateStoreSettings(
            pb.UpdateStoreSettingsRequest(store_id=other.id, operations_email="x@example.org"),
            metadata=agent,
        )
    )
    assert denied.code() == grpc.StatusCode.NOT_FOUND


async def test_settings_keep_the_operations_contact(partners: Partners) -> None:
    store = await partners.store()
    bad = await fails(
        partners.stub.UpdateStoreSettings(
            pb.UpdateStoreSettingsRequest(store_id=store.id, operations_email="", phone="abc"),
            metadata=store.token,
        )
    )
    assert _fields(bad) == {"operations_email", "phone"}
    updated = await partners.stub.UpdateStoreSettings(
        pb.UpdateStoreSettingsRequest(
            store_id=store.id, operations_email="Manager@Example.org", phone="+212 5 20 43"
        ),
        metadata=store.token,
    )
    assert updated.store.operations_email == "Manager@example.org"


async def test_prices_change_directly(partners: Partners) -> None:
    store = await partners.store()
    product = store.products[0]
    changed = await partners.stub.SetProductPrice(
        pb.SetProductPriceRequest(store_id=store.id, product_id=product.id, price_cents=1290),
        metadata=store.token,
    )
    assert changed.product.price_cents == 1290
    negative = await fails(
        partners.stub.SetProductPrice(
            pb.SetProductPriceRequest(store_id=store.id, product_id=product.id, price_cents=-1),
            metadata=store.token,
        )
    )
    assert _fields(negative) == {"price_cents"}
    other = await partners.store()
    foreign = await fails(
        partners.stub.SetProductPrice(
            pb.SetProductPriceRequest(store_id=other.id, product_id=product.id, price_cents=1),
            metadata=store.token,
        )
    )
    assert foreign.code() == grpc.StatusCode.NOT_FOUND
    # Another store's product through my own store: not found either.
    crossed = await fails(
        partners.stub.SetProductPrice(
            pb.SetProductPriceRequest(
                store_id=store.id, product_id=other.products[0].id, price_cents=1
            ),
            metadata=store.token,
        )
    )
    assert crossed.code() == grpc.StatusCode.NOT_FOUND


async def test_a_deactivated_product_comes_back_by_itself(partners: Partners) -> None:
    store = await partners.store()
    product = store.products[0]
    soon = partners.clock() + timedelta(seconds=2)
    off = await partners.stub.DeactivateProduct(
        pb.DeactivateProductRequest(
            store_id=store.id, product_id=product.id, reactivate_time=_stamp(soon), reason="rupture"
        ),
        metadata=store.token,
    )
    assert not off.product.active
    assert off.product.reactivate_time.ToDatetime().replace(microsecond=0) == soon.replace(
        microsecond=0, tzinfo=None
    )
    listed = await partners.stub.ListProducts(
        pb.ListProductsRequest(store_id=store.id, active_only=True), metadata=store.token
    )
    assert product.id not in {p.id for p in listed.products}

    async def back() -> bool:
        page = await partners.stub.ListProducts(
            pb.ListProductsRequest(store_id=store.id, active_only=True), metadata=store.token
        )
        return product.id in {p.id for p in page.products}

    assert await eventually(back, within=30)


async def test_a_later_choice_wins_over_an_earlier_timer(partners: Partners) -> None:
    store = await partners.store()
    product = store.products[1]
    soon = partners.clock() + timedelta(seconds=1)
    await partners.stub.DeactivateProduct(
        pb.DeactivateProductRequest(
            store_id=store.id, product_id=product.id, reactivate_time=_stamp(soon)
        ),
        metadata=store.token,
    )
    # Off again, for good this time: the first timer must not bring it back.
    await partners.stub.DeactivateProduct(
        pb.DeactivateProductRequest(store_id=store.id, product_id=product.id),
        metadata=store.token,
    )
    fired = await partners.stub.ReactivateScheduledProduct(
        pb.ReactivateScheduledProductRequest(product_id=product.id, deactivation=1),
        metadata=partners.worker,
    )
    assert not fired.reactivated
    assert not fired.product.active
    past = await fails(
        partners.stub.DeactivateProduct(
            pb.DeactivateProductRequest(
                store_id=store.id,
                product_id=product.id,
                reactivate_time=_stamp(partners.clock() - timedelta(minutes=1)),
            ),
            metadata=store.token,
        )
    )
    assert _fields(past) == {"reactivate_time"}
    manual = await partners.stub.ActivateProduct(
        pb.ActivateProductRequest(store_id=store.id, product_id=product.id), metadata=store.token
    )
    assert manual.product.active
    # The timer's call is internal: a partner cannot make it.
    denied = await fails(
        partners.stub.ReactivateScheduledProduct(
            pb.ReactivateScheduledProductRequest(product_id=product.id, deactivation=2),
            metadata=store.token,
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_deactivation_timer_is_recorded_with_the_change(partners: Partners) -> None:
    """The workflow start is an outbox row of the same transaction (never lost)."""
    store = await partners.store()
    product = store.products[2]
    later = partners.clock() + timedelta(days=1)
    await partners.stub.DeactivateProduct(
        pb.DeactivateProductRequest(
            store_id=store.id, product_id=product.id, reactivate_time=_stamp(later)
        ),
        metadata=store.token,
    )
    async with partners.sessions.begin() as session:
        ids = set(
            await session.scalars(
                select(outbox.c.workflow_id).where(
                    outbox.c.workflow_id.like(f"product-reactivation/{product.id}/%")
                )
            )
        )
    assert ids == {f"product-reactivation/{product.id}/1"}


async def test_names_change_only_through_support(partners: Partners) -> None:
    store = await partners.store()
    product = store.products[0]
    same = await fails(
        partners.stub.SubmitContentChange(
            pb.SubmitContentChangeRequest(
                store_id=store.id, product_id=product.id, proposed_name=product.name
            ),
            metadata=store.token,
        )
    )
    assert _fields(same) == {"proposed_name"}
    price = await fails(
        partners.stub.SubmitContentChange(
            pb.SubmitContentChangeRequest(
                store_id=store.id,
                product_id=product.id,
                proposed_name="Margherita",
                proposed_price_cents=5,
            ),
            metadata=store.token,
        )
    )
    assert _fields(price) == {"proposed_price_cents"}
    made = await partners.stub.SubmitContentChange(
        pb.SubmitContentChangeRequest(
            store_id=store.id,
            product_id=product.id,
            proposed_name="Margherita DOP",
            note="Nouvelle mozzarella",
        ),
        metadata=store.token,
    )
    change = made.content_change
    assert change.status == pb.CONTENT_CHANGE_STATUS_PENDING
    # The ticket opened in support at once, with the partner's own token.
    assert change.ticket_status == pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED, change
    assert partners.support is not None
    ticket = await partners.support.GetTicket(
        support_pb2.GetTicketRequest(ticket_id=change.ticket_id), metadata=partners.admin
    )
    assert ticket.ticket.organisation_id == store.id
    assert ticket.ticket.channel == support_pb2.TICKET_CHANNEL_PARTNER_MESSAGE
    assert "Margherita DOP" in ticket.ticket.description
    assert ticket.ticket.reply_to_email == f"ops.{store.id[:8]}@example.org"
    # The name is unchanged until an operator applies the change.
    listed = await partners.stub.ListProducts(
        pb.ListProductsRequest(store_id=store.id), metadata=store.token
    )
    assert product.name in {p.name for p in listed.products}
    denied = await fails(
        partners.stub.DecideContentChange(
            pb.DecideContentChangeRequest(content_change_id=change.id, approve=True),
            metadata=store.token,
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    _, agent = await partners.operator()
    applied = await partners.stub.DecideContentChange(
        pb.DecideContentChangeRequest(content_change_id=change.id, approve=True),
        metadata=agent,
    )
    assert applied.product.name == "Margherita DOP"
    assert applied.content_change.status == pb.CONTENT_CHANGE_STATUS_APPLIED
    twice = await fails(
        partners.stub.DecideContentChange(
            pb.DecideContentChangeRequest(content_change_id=change.id, approve=False, note="x"),
            metadata=agent,
        )
    )
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_new_product_is_a_content_change_too(partners: Partners) -> None:
    store = await partners.store()
    missing = await fails(
        partners.stub.SubmitContentChange(
            pb.SubmitContentChangeRequest(store_id=store.id), metadata=store.token
        )
    )
    assert _fields(missing) == {"proposed_name", "proposed_price_cents"}
    made = await partners.stub.SubmitContentChange(
        pb.SubmitContentChangeRequest(
            store_id=store.id,
            proposed_name="Calzone",
            proposed_description="Pliée",
            proposed_price_cents=1450,
        ),
        metadata=store.token,
    )
    _, agent = await partners.operator()
    rejected = await fails(
        partners.stub.DecideContentChange(
            pb.DecideContentChangeRequest(content_change_id=made.content_change.id),
            metadata=agent,
        )
    )
    assert _fields(rejected) == {"note"}  # a rejection says why
    applied = await partners.stub.DecideContentChange(
        pb.DecideContentChangeRequest(content_change_id=made.content_change.id, approve=True),
        metadata=agent,
    )
    assert (applied.product.name, applied.product.price_cents) == ("Calzone", 1450)
    changes = await partners.stub.ListContentChanges(
        pb.ListContentChangesRequest(store_id=store.id), metadata=store.token
    )
    assert [c.product_id for c in changes.content_changes] == [applied.product.id]
