"""`/v1/support/...` through the real gateway app (over ASGI) in front of the real services:
a customer's journey, an agent's, and the problems (RFC 9457) they meet on the way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from guichet.support.v1 import support_pb2 as pb

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import connect_identity
from tests.identity.harness import DELIVERY_PARTNER
from tests.support.harness import Metadata, Support

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


@pytest.fixture
async def http(support: Support) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        identity_addr=support.settings.identity_addr,
        support_addr=support.address,
        auth_rate_limit_per_minute=0,
    )
    link = connect_identity(settings)
    app: FastAPI = create_app(settings, identity=link)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        channel = getattr(app.state, "support_channel", None)
        if channel is not None:
            await channel.close()
        await link.close()


def headers(metadata: Metadata) -> dict[str, str]:
    return {"authorization": dict(metadata)["authorization"]}


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["type"] == f"https://guichet.dev/problems/{kind}"
    return body


async def test_a_customer_opens_follows_and_answers_a_ticket(
    http: httpx.AsyncClient, support: Support
) -> None:
    category = await support.category()
    _, _, token = await support.customer()
    _, _, rival = await support.customer()
    _, agent_token = await support.agent()
    customer, agent = headers(token), headers(agent_token)

    categories = await http.get("/v1/support/categories?audience=customer", headers=customer)
    assert categories.status_code == 200
    assert category.id in {c["id"] for c in categories.json()["items"]}
    viewed = await http.get(f"/v1/support/categories/{category.id}", headers=customer)
    assert viewed.status_code == 200
    assert viewed.json()["category"]["entries"][0]["answer"].startswith("Vérifiez")
    view_id = viewed.json()["view_id"]

    empty = await http.post("/v1/support/tickets", json={}, headers=customer)
    problem = assert_problem(empty, 400, "invalid_argument")
    assert {e["field"] for e in problem["errors"]} == {  # type: ignore[attr-defined]
        "category_id",
        "title",
        "description",
        "screen_code",
        "example_record",
    }
    opened = await http.post(
        "/v1/support/tickets",
        json={
            "category_id": category.id,
            "title": "E-mail du contact non enregistré",
            "description": "Client 100 via ATW0001 : l'e-mail de Bruno manque.",
            "screen_code": "ATW0001",
            "example_record": "client 100",
            "view_id": view_id,
        },
        headers=customer,
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    assert (ticket["status"], ticket["priority"], ticket["kind"]) == ("open", "normal", "support")
    assert ticket["next_due_at"] is not None
    assert ticket["language"] == "fr"  # no Accept-Language: French, the mails' default
    tid = ticket["id"]
    # The request's language is recorded with the ticket: its mails are written in it.
    for sent, recorded in (("pt-BR,pt;q=0.9", "pt-BR"), ("de, en;q=0.5", "en"), ("pt-PT", "pt-BR")):
        in_language = await http.post(
            "/v1/support/tickets",
            json={
                "category_id": category.id,
                "title": "Nota fiscal",
                "description": "Não imprime.",
                "screen_code": "ATW0001",
                "example_record": "cliente 100",
            },
            headers={**customer, "Accept-Language": sent},
        )
        assert in_language.status_code == 201, in_language.text
        assert in_language.json()["language"] == recorded

    listed = await http.get("/v1/support/tickets", params={"q": "bruno"}, headers=customer)
    assert [t["id"] for t in listed.json()["items"]] == [tid]
    hidden = await http.get(f"/v1/support/tickets/{tid}", headers=headers(rival))
    assert_problem(hidden, 404, "not_found")

    upload = await http.post(
        f"/v1/support/tickets/{tid}/attachments",
        params={"filename": "capture.png"},
        content=PNG,
        headers={**customer, "content-type": "image/png"},
    )
    assert upload.status_code == 201, upload.text
    download = await http.get(f"/v1/support/attachments/{upload.json()['id']}", headers=customer)
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert "attachment" in download.headers["content-disposition"]
    refused = await http.post(
        f"/v1/support/tickets/{tid}/attachments",
        params={"filename": "x.sh"},
        content=b"#!/bin/sh",
        headers={**customer, "content-type": "application/x-sh"},
    )
    assert_problem(refused, 400, "invalid_argument")

    waiting = await http.post(
        f"/v1/support/tickets/{tid}/messages",
        json={"body": "Une capture, svp ?", "set_status": "waiting_on_customer"},
        headers=agent,
    )
    assert waiting.status_code == 201
    assert waiting.json()["ticket"]["status"] == "waiting_on_customer"
    answered = await http.post(
        f"/v1/support/tickets/{tid}/messages", json={"body": "Ci-jointe."}, headers=customer
    )
    assert answered.json()["ticket"]["status"] == "in_progress"
    finish_by_customer = await http.post(
        f"/v1/support/tickets/{tid}/status", json={"status": "finished"}, headers=customer
    )
    assert_problem(finish_by_customer, 403, "permission_denied")
    finished = await http.post(
        f"/v1/support/tickets/{tid}/status", json={"status": "finished"}, headers=agent
    )
    assert finished.json()["status"] == "finished"
    reopen = await http.post(
        f"/v1/support/tickets/{tid}/status", json={"status": "open"}, headers=agent
    )
    body = assert_problem(reopen, 409, "transition_not_allowed")
    assert "finished" in str(body["detail"]) and "open" in str(body["detail"])

    history = (await http.get(f"/v1/support/tickets/{tid}", headers=customer)).json()
    assert [m["side"] for m in history["messages"]] == ["agent", "customer"]
    assert len(history["pauses"]) == 1 and history["pauses"][0]["ended_at"] is not None
    assert {c["clock"] for c in history["clocks"]} == {
        "first_response",
        "next_response",
        "resolution",
    }
    assert [a["filename"] for a in history["attachments"]] == ["capture.png"]


async def test_agents_queue_partner_messages_and_reports(
    http: httpx.AsyncClient, support: Support
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    partner_category = await support.category(audience=pb.CATEGORY_AUDIENCE_PARTNER)
    plan = await support.plan()
    _, _, partner_token = await support.customer(
        plan.id, kind=DELIVERY_PARTNER, operations_email="ops@partner.example.org"
    )
    _, agent_token = await support.agent()
    partner, agent = headers(partner_token), headers(agent_token)
    sent = await http.post(
        "/v1/support/partner-messages",
        json={
            "category_id": partner_category.id,
            "subject": "Changer le nom d'un produit",
            "body": "« Margherita » devient « Margherita DOP ».",
        },
        headers=partner,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["reply_to_email"] == "ops@partner.example.org"
    assert sent.json()["channel"] == "partner_message"

    forbidden = await http.get("/v1/support/queue", headers=partner)
    assert_problem(forbidden, 403, "permission_denied")
    queue = await http.get("/v1/support/queue", headers=agent)
    assert sent.json()["id"] in {t["id"] for t in queue.json()["items"]}
    raised = await http.post(
        f"/v1/support/tickets/{sent.json()['id']}/priority",
        json={"priority": "urgent"},
        headers=agent,
    )
    assert raised.json()["priority"] == "urgent"
    assert raised.json()["next_due_at"] < sent.json()["next_due_at"]

    report = await http.get(
        "/v1/support/reports/sla",
        params={
            "plan_id": plan.id,
            "start": start.isoformat(),
            "end": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
        },
        headers=agent,
    )
    assert report.status_code == 200, report.text
    [figures] = report.json()["plans"]
    assert figures["tickets_opened"] == 1
    assert {t["clock"] for t in figures["targets"]} == {
        "first_response",
        "next_response",
        "resolution",
    }
    bad = await http.get("/v1/support/reports/sla", params={"start": "yesterday"}, headers=agent)
    assert_problem(bad, 400, "invalid_argument")
    anonymous = await http.get("/v1/support/tickets")
    assert_problem(anonymous, 401, "unauthenticated")

    # A client retrying with its Idempotency-Key gets the ticket its first call opened.
    keyed = {
        "category_id": partner_category.id,
        "subject": "Facture de mars",
        "body": "La facture de mars manque.",
    }
    key = {**partner, "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await http.post("/v1/support/partner-messages", json=keyed, headers=key)
    again = await http.post("/v1/support/partner-messages", json=keyed, headers=key)
    other = await http.post("/v1/support/partner-messages", json=keyed, headers=partner)
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    bad_key = await http.post(
        "/v1/support/partner-messages", json=keyed, headers={**partner, "Idempotency-Key": " x"}
    )
    assert_problem(bad_key, 400, "invalid_argument")


PDF = b"%PDF-1.7\n"


async def test_attachments_past_the_gateway_body_limit_reach_support(
    http: httpx.AsyncClient, support: Support
) -> None:
    """Uploads get the gateway's upload limit, not its 64 KiB JSON limit: support's own checks
    decide up to it, with their precise error; past it the edge answers 413."""
    category = await support.category()
    _, _, token = await support.customer()
    customer = headers(token)
    ticket = await support.open(token, category.id)
    url = f"/v1/support/tickets/{ticket.id}/attachments"

    def upload(content: bytes, filename: str = "extrait.pdf") -> Awaitable[httpx.Response]:
        return http.post(
            url,
            params={"filename": filename},
            content=content,
            headers={**customer, "content-type": "application/pdf"},
        )

    mebibyte = PDF + b"\x00" * (1024 * 1024 - len(PDF))
    uploaded = await upload(mebibyte)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size_bytes"] == 1024 * 1024
    download = await http.get(f"/v1/support/attachments/{uploaded.json()['id']}", headers=customer)
    assert download.content == mebibyte

    limit = support.settings.attachment_max_bytes
    over = await upload(PDF + b"\x00" * (limit + 1 - len(PDF)))
    problem = assert_problem(over, 422, "unprocessable")
    assert problem["errors"] == [
        {"field": "content", "code": "file_too_large", "detail": f"is larger than {limit} bytes"}
    ]

    ceiling = GatewaySettings.model_fields["max_upload_bytes"].default
    beyond = await upload(PDF + b"\x00" * ceiling)
    assert_problem(beyond, 413, "content_too_large")

    # Every other route keeps the small limit, even a JSON body to the same ticket.
    note = await http.post(
        f"/v1/support/tickets/{ticket.id}/messages",
        json={"body": "x" * (100 * 1024)},
        headers=customer,
    )
    assert_problem(note, 413, "content_too_large")
    history = await support.history(ticket.id)
    assert [a.size_bytes for a in history.attachments] == [1024 * 1024]
    assert not history.messages
