"""Bank proofs through the gateway with its default limits: a proof is a file, not a JSON
document, so it passes the 64 KiB body limit up to the upload limit and partners' own checks
(size, type, bytes) decide; every other route keeps the small limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.rpc import close_channels
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import connect_identity
from tests.partners.harness import PDF, SECRETS, VALID_IBAN, Partners


@pytest.fixture
async def gateway(partners: Partners) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app over ASGI with the production defaults for body sizes."""
    settings = GatewaySettings(
        identity_addr=f"127.0.0.1:{partners.identity_port}",
        partners_addr=partners.address,
        service_client_id="gateway",
        service_client_secret=SECRETS["gateway"],
    )
    assert settings.max_body_bytes == 64 * 1024
    link = connect_identity(settings)
    app = create_app(settings, identity=link)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await close_channels(app.state)
        await link.close()


def _problem(response: httpx.Response, status: int, reason: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["type"] == f"https://guichet.dev/problems/{reason}"
    return body


async def test_a_one_mebibyte_proof_goes_through_and_partners_judges_the_size(
    partners: Partners, gateway: httpx.AsyncClient
) -> None:
    store = await partners.store(products=0)
    auth = dict(store.token)
    base = f"/v1/partners/{store.id}/bank-detail-changes"
    made = await gateway.post(
        base,
        json={"iban": VALID_IBAN, "bic": "AGRIFRPP", "account_holder": "Pizzeria SARL"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    proof_url = f"{base}/{made.json()['id']}/proof"

    def upload(content: bytes) -> Awaitable[httpx.Response]:
        return gateway.put(
            proof_url,
            params={"filename": "attestation.pdf"},
            content=content,
            headers={**auth, "content-type": "application/pdf"},
        )

    mebibyte = PDF + b" " * (1024 * 1024 - len(PDF))
    uploaded = await upload(mebibyte)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["status"] == "proof_submitted"
    back = await gateway.get(proof_url, headers=auth)
    assert back.content == mebibyte

    limit = partners.settings.proof_max_bytes
    over = _problem(await upload(PDF + b" " * (limit + 1 - len(PDF))), 422, "unprocessable")
    assert over["errors"] == [
        {"field": "content", "code": "file_too_large", "detail": f"is larger than {limit} bytes"}
    ]

    ceiling = GatewaySettings.model_fields["max_upload_bytes"].default
    _problem(await upload(PDF + b" " * ceiling), 413, "content_too_large")

    # The route's limit is the upload's only: a JSON body elsewhere keeps 64 KiB.
    big_json = await gateway.post(
        f"/v1/partners/{store.id}/messages",
        json={"category": "other", "subject": "x", "body": "x" * (100 * 1024)},
        headers=auth,
    )
    _problem(big_json, 413, "content_too_large")
    still = await gateway.get(proof_url, headers=auth)
    assert still.content == mebibyte  # the refused uploads changed nothing
