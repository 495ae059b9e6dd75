"""The partners routes through the real gateway app (ASGI) in front of the real services: the
journeys of a store's manager and of support, and RFC 9457 problems for every refusal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from guichet.partners.v1 import partners_pb2 as pb

from tests.partners.harness import PDF, PNG, VALID_IBAN, Partners, StoreFixture, eventually

PROBLEM = "application/problem+json"


def _auth(metadata: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(metadata)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors") or []}


async def _store(partners: Partners) -> tuple[StoreFixture, dict[str, str]]:
    store = await partners.store()
    return store, _auth(store.token)


async def test_unauthenticated_and_foreign_stores_are_problems(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    other, _ = await _store(partners)
    body = _problem(await http.get(f"/v1/partners/{store.id}/orders/history"), 401)
    assert body["type"].endswith("/unauthenticated")
    for path in ("", "/orders/in-progress", "/orders/history", "/products", "/promotions"):
        body = _problem(await http.get(f"/v1/partners/{other.id}{path}", headers=auth), 404)
        assert body["type"].endswith("/not_found")
    bad = _problem(await http.get("/v1/partners/not-a-uuid/orders/history", headers=auth), 400)
    assert _fields(bad) == {"store_id"}


async def test_orders_in_progress_history_and_detail(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    running = await partners.order(store)
    cancelled = await partners.order(store, paid=True)
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(
            order_id=cancelled.order.id,
            status=pb.ORDER_STATUS_CANCELLED,
            cancellation_reason="restaurant closed",
        ),
        metadata=partners.platform,
    )
    base = f"/v1/partners/{store.id}"
    in_progress = await http.get(f"{base}/orders/in-progress", headers=auth)
    assert in_progress.status_code == 200, in_progress.text
    assert [o["id"] for o in in_progress.json()["items"]] == [running.order.id]
    history = (await http.get(f"{base}/orders/history", headers=auth)).json()
    [line] = history["items"]
    assert line["status"] == "cancelled"
    assert (line["cancellation_reason"], line["payment_made"]) == ("restaurant closed", True)
    assert history["next_page_token"] is None
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    filtered = await http.get(
        f"{base}/orders/history",
        params={"status": "cancelled", "from": since, "page_size": 1},
        headers=auth,
    )
    assert [o["id"] for o in filtered.json()["items"]] == [cancelled.order.id]
    wrong = _problem(
        await http.get(f"{base}/orders/history", params={"status": "accepted"}, headers=auth), 400
    )
    assert _fields(wrong) == {"status"}
    detail = (await http.get(f"{base}/orders/{running.order.id}", headers=auth)).json()
    assert [i["name"] for i in detail["items"]] == ["Pizza 1", "Pizza 2"]
    assert detail["events"][0]["kind"] == "order.accepted"
    assert detail["escalation"] is None
    missing = _problem(await http.get(f"{base}/orders/{uuid.uuid4()}", headers=auth), 404)
    assert missing["detail"] == "order not found"


async def test_out_of_stock_answer_and_support_through_the_gateway(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    order = await partners.order(store, paid=True)
    base = f"/v1/partners/{store.id}/orders/{order.order.id}"
    reported = await http.post(
        f"{base}/out-of-stock", json={"item_id": order.items[0].id}, headers=auth
    )
    assert reported.status_code == 201, reported.text
    escalation = reported.json()["escalation"]
    assert escalation["status"] == "awaiting_answer" and escalation["answer_deadline"]
    again = _problem(
        await http.post(f"{base}/out-of-stock", json={"item_id": order.items[1].id}, headers=auth),
        409,
    )
    assert again["type"].endswith("/escalation_exists")
    unknown = _problem(
        await http.post(f"{base}/out-of-stock/answer", json={"accepted": True}, headers=auth), 400
    )
    assert "accepted" in _fields(unknown) or "customer_accepted" in _fields(unknown)
    no_product = _problem(
        await http.post(
            f"{base}/out-of-stock/answer", json={"customer_accepted": True}, headers=auth
        ),
        422,  # required only when accepted: a rule beyond the schema
    )
    assert _fields(no_product) == {"replacement_product_id"}
    assert no_product["errors"][0]["code"] == "replacement_required"
    refused = await http.post(
        f"{base}/out-of-stock/answer", json={"customer_accepted": False}, headers=auth
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["escalation"]["answer"] == "refused"

    _, agent = await partners.operator()
    agent_auth = _auth(agent)

    async def escalated() -> bool:
        response = await http.get("/v1/operator/partners/escalations", headers=agent_auth)
        return order.order.id in {e["order_id"] for e in response.json()["items"]}

    await eventually(escalated)
    denied = _problem(
        await http.post(
            f"/v1/operator/partners/orders/{order.order.id}/cancel", json={}, headers=auth
        ),
        403,
    )
    assert denied["type"].endswith("/permission_denied")
    cancelled = await http.post(
        f"/v1/operator/partners/orders/{order.order.id}/cancel",
        json={"note": "client remboursé"},
        headers=agent_auth,
    )
    assert cancelled.status_code == 200, cancelled.text
    result = cancelled.json()
    assert result["order"]["status"] == "refunded"
    assert result["order"]["cancellation_reason"] == "product unavailable"
    assert result["order"]["refund_funded_by"] == "partner"
    assert result["escalation"]["cancelled_by"] == "support"
    twice = _problem(
        await http.post(
            f"/v1/operator/partners/orders/{order.order.id}/cancel", json={}, headers=agent_auth
        ),
        409,
    )
    assert twice["type"].endswith("/already_cancelled")
    history = (await http.get(f"/v1/partners/{store.id}/orders/history", headers=auth)).json()
    line = next(o for o in history["items"] if o["id"] == order.order.id)
    assert (line["status"], line["refund_reason"]) == ("refunded", "product unavailable")


async def test_menu_through_the_gateway(partners: Partners, http: httpx.AsyncClient) -> None:
    store, auth = await _store(partners)
    base = f"/v1/partners/{store.id}/products"
    product = store.products[0].id
    price = await http.put(f"{base}/{product}/price", json={"price_cents": 1350}, headers=auth)
    assert price.json()["price_cents"] == 1350
    bad = _problem(
        await http.put(f"{base}/{product}/price", json={"price_cents": -5}, headers=auth), 400
    )
    assert _fields(bad) == {"price_cents"}
    typo = _problem(await http.put(f"{base}/{product}/price", json={"price": 5}, headers=auth), 400)
    assert "price" in _fields(typo)
    until = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    off = await http.post(
        f"{base}/{product}/deactivate",
        json={"reactivate_at": until, "reason": "rupture"},
        headers=auth,
    )
    assert off.status_code == 200, off.text
    assert (off.json()["active"], off.json()["deactivation_reason"]) == (False, "rupture")
    assert off.json()["reactivate_at"] is not None
    listed = (await http.get(base, params={"active_only": "true"}, headers=auth)).json()
    assert product not in {p["id"] for p in listed["items"]}
    on = await http.post(f"{base}/{product}/activate", headers=auth)
    assert on.json()["active"] is True
    change = await http.post(
        f"/v1/partners/{store.id}/content-changes",
        json={"product_id": product, "proposed_description": "Tomates San Marzano"},
        headers=auth,
    )
    assert change.status_code == 201, change.text
    assert change.json()["ticket_status"] == "ticket_opened"
    _, agent = await partners.operator()
    applied = await http.post(
        f"/v1/operator/partners/content-changes/{change.json()['id']}/approve",
        json={},
        headers=_auth(agent),
    )
    assert applied.json()["product"]["description"] == "Tomates San Marzano"


async def test_check_ins_and_support_view(partners: Partners, http: httpx.AsyncClient) -> None:
    store, auth = await _store(partners)
    first, second = await asyncio.gather(
        http.post(f"/v1/partners/{store.id}/check-ins", headers=auth),
        http.post(f"/v1/partners/{store.id}/check-ins", headers=auth),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert _problem(loser, 409)["type"].endswith("/already_checked_in")
    listed = (await http.get(f"/v1/partners/{store.id}/check-ins", headers=auth)).json()
    assert len(listed["items"]) == 1
    absent, _ = await _store(partners)
    _, agent = await partners.operator()
    missing = await http.get(
        "/v1/operator/partners/check-ins/missing",
        params={"page_size": 500},
        headers=_auth(agent),
    )
    ids = {row["store"]["id"] for row in missing.json()["items"]}
    assert absent.id in ids and store.id not in ids
    forbidden = _problem(
        await http.get("/v1/operator/partners/check-ins/missing", headers=auth), 403
    )
    assert forbidden["type"].endswith("/permission_denied")


async def test_promotion_steps_through_the_gateway(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    base = f"/v1/partners/{store.id}/promotions"
    draft = await http.post(
        base, json={"name": "Livraison offerte", "kind": "free_delivery"}, headers=auth
    )
    assert draft.status_code == 201, draft.text
    promotion = draft.json()["id"]
    now = datetime.now(UTC)
    configured = await http.put(
        f"{base}/{promotion}/configuration",
        json={
            "min_order_cents": 2000,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=3)).isoformat(),
        },
        headers=auth,
    )
    assert configured.json()["status"] == "configured", configured.text
    active = await http.post(f"{base}/{promotion}/activate", headers=auth)
    assert active.json()["status"] == "active"
    listed = (await http.get(base, params={"status": "active"}, headers=auth)).json()
    assert [p["id"] for p in listed["items"]] == [promotion]
    problem = await http.post(
        f"{base}/{promotion}/problems",
        json={"description": "La promotion n'apparaît pas dans l'application"},
        headers=auth,
    )
    assert problem.status_code == 201, problem.text
    assert problem.json()["category"] == "other"


async def test_bank_details_and_proofs_through_the_gateway(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    other, other_auth = await _store(partners)
    base = f"/v1/partners/{store.id}/bank-detail-changes"
    made = await http.post(
        base,
        json={"iban": VALID_IBAN, "bic": "AGRIFRPP", "account_holder": "Pizzeria SARL"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    change = made.json()["id"]
    # No type, and a name whose extension names none: nothing says what the bytes are.
    no_type = _problem(
        await http.put(
            f"{base}/{change}/proof",
            params={"filename": "rib"},
            content=PDF,
            headers={**auth, "content-type": ""},
        ),
        422,
    )
    assert _fields(no_type) == {"content_type"}
    lying = _problem(
        await http.put(
            f"{base}/{change}/proof",
            params={"filename": "rib.pdf"},
            content=PNG,
            headers={**auth, "content-type": "application/pdf"},
        ),
        422,  # what the bytes are is beyond a schema
    )
    assert _fields(lying) == {"content"}
    assert lying["errors"][0]["code"] == "content_mismatch"
    uploaded = await http.put(
        f"{base}/{change}/proof",
        params={"filename": "attestation RIB.pdf"},
        content=PDF,
        headers={**auth, "content-type": "application/pdf"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["status"] == "proof_submitted"
    own = await http.get(f"{base}/{change}/proof", headers=auth)
    assert own.status_code == 200
    assert own.content == PDF
    assert own.headers["content-type"] == "application/pdf"
    assert own.headers["content-disposition"].startswith("attachment;")
    # Another store, through its own path or this one's: not found.
    for path in (
        f"/v1/partners/{other.id}/bank-detail-changes/{change}/proof",
        f"{base}/{change}/proof",
    ):
        _problem(await http.get(path, headers=other_auth), 404)
    _, agent = await partners.operator()
    agent_auth = _auth(agent)
    queue = await http.get(
        "/v1/operator/partners/bank-detail-changes",
        params={"status": "proof_submitted"},
        headers=agent_auth,
    )
    assert change in {c["id"] for c in queue.json()["items"]}
    proof = await http.get(
        f"/v1/operator/partners/bank-detail-changes/{change}/proof", headers=agent_auth
    )
    assert proof.content == PDF
    approved = await http.post(
        f"/v1/operator/partners/bank-detail-changes/{change}/approve", headers=agent_auth
    )
    assert approved.json()["status"] == "approved", approved.text
    store_now = (await http.get(f"/v1/partners/{store.id}", headers=auth)).json()
    assert store_now["iban_masked"] == "FR76 **** 0189"


async def test_support_messages_through_the_gateway(
    partners: Partners, http: httpx.AsyncClient
) -> None:
    store, auth = await _store(partners)
    base = f"/v1/partners/{store.id}/messages"
    vague = _problem(
        await http.post(
            base,
            json={"category": "invoices_and_orders", "subject": "Paiement", "body": "Manquant"},
            headers=auth,
        ),
        422,
    )
    assert _fields(vague) == {"order_code", "period"}
    sent = await http.post(
        base,
        json={
            "category": "invoices_and_orders",
            "subject": "Paiement manquant",
            "body": "Le virement d'octobre n'est pas arrivé",
            "period": "2026-10",
        },
        headers=auth,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "ticket_opened"
    assert sent.json()["ticket_id"]
    listed = (await http.get(base, headers=auth)).json()
    assert [m["id"] for m in listed["items"]] == [sent.json()["id"]]
