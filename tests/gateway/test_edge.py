"""The edge itself: request ids, security headers, CORS, the auth brake, tokens, probes, OpenAPI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from guichet.identity.v1 import identity_pb2
from starlette.requests import Request

from services.gateway.app import create_app
from services.gateway.portals.identity.schemas import OrganisationKind, UserStatus
from services.gateway.ratelimit import client_ip
from services.gateway.settings import GatewaySettings
from tests.gateway.conftest import ClientFactory, RefusingServer, SigningKeys
from tests.gateway.test_problems import assert_problem

# --- request id ------------------------------------------------------------------------------


async def test_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    rid = "req-" + uuid.uuid4().hex
    response = await client.get("/healthz", headers={"x-request-id": rid})
    assert response.headers["x-request-id"] == rid


@pytest.mark.parametrize(
    "bad", ["short", "has space in it", "x" * 200, "<script>alert(1)</script>"]
)
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/healthz", headers={"x-request-id": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_request_id_is_generated_and_reaches_identity(
    client: httpx.AsyncClient, refusing_identity: RefusingServer
) -> None:
    first = await client.post("/v1/password/forgot", json={"login": "NOT_FOUND"})
    second = await client.post("/v1/password/forgot", json={"login": "NOT_FOUND"})
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert [m["x-request-id"] for m in refusing_identity.servicer.metadata] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]


# --- security headers ------------------------------------------------------------------------


async def test_security_headers_on_success_and_problem(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/healthz"), await client.get("/v1/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers


async def test_auth_responses_are_not_cached(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"


async def test_jwks_is_briefly_cacheable(client: httpx.AsyncClient, keys: SigningKeys) -> None:
    for path in ("/v1/auth/jwks", "/.well-known/jwks.json"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=300"
        [key] = response.json()["keys"]
        assert key["kid"] == keys.kid and "d" not in key


async def test_hsts_when_configured(client_for: ClientFactory) -> None:
    async with client_for(hsts_max_age=31536000) as client:
        response = await client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_docs_page_may_load_its_scripts(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers


async def test_docs_can_be_turned_off(client_for: ClientFactory) -> None:
    async with client_for(public_docs=False) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 404


# --- CORS ------------------------------------------------------------------------------------


async def test_cors_preflight_from_an_allowed_origin(client_for: ClientFactory) -> None:
    async with client_for(cors_allow_origins=["https://portail.example.org"]) as client:
        response = await client.options(
            "/v1/auth/token",
            headers={
                "origin": "https://portail.example.org",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-request-id",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://portail.example.org"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "x-request-id" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["x-request-id"]


async def test_cors_preflight_from_another_origin_is_refused(client_for: ClientFactory) -> None:
    async with client_for(cors_allow_origins=["https://portail.example.org"]) as client:
        response = await client.options(
            "/v1/auth/token",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_cors_headers_on_problems_expose_retry_after(client_for: ClientFactory) -> None:
    async with client_for(cors_allow_origins=["https://portail.example.org"]) as client:
        response = await client.post(
            "/v1/password/forgot",
            json={"login": "RESOURCE_EXHAUSTED"},
            headers={"origin": "https://portail.example.org"},
        )
    assert response.status_code == 429
    assert response.headers["access-control-allow-origin"] == "https://portail.example.org"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "x-request-id" in exposed


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("GATEWAY_PORT", "8123")
    settings = GatewaySettings()
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]
    assert settings.http_port == 8123
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", '["https://c.example"]')
    assert GatewaySettings().cors_allow_origins == ["https://c.example"]


# --- the brakes ------------------------------------------------------------------------------


async def test_braked_routes_ask_identitys_shared_brake(
    client_for: ClientFactory, refusing_identity: RefusingServer
) -> None:
    """The gateway keeps no count: identity's PostgreSQL does, for every replica
    (tests/gateway/test_shared_brakes.py runs two gateways on one identity)."""
    identity = refusing_identity.servicer
    async with client_for(trusted_proxy_count=1) as client:
        ok = await client.post(
            "/v1/password/forgot", json={"login": "x"}, headers={"x-forwarded-for": "198.51.100.9"}
        )
        assert ok.status_code == 202
        identity.brake_wait = 42
        refused = await client.post(
            "/v1/password/forgot", json={"login": "x"}, headers={"x-forwarded-for": "198.51.100.9"}
        )
    body = assert_problem(refused, 429)
    assert body["type"].endswith("/resource_exhausted")
    assert refused.headers["retry-after"] == "42"
    assert identity.attempts == [("POST /v1/password/forgot", "198.51.100.9")] * 2


async def test_sign_in_is_not_braked_by_the_gateway(
    client: httpx.AsyncClient, refusing_identity: RefusingServer
) -> None:
    """Identity counts sign-in failures (per username, device, address); the gateway lets every
    attempt through to it, so successful sign-ins behind one address are never braked."""
    for _ in range(15):
        response = await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
        assert response.status_code == 401
    assert refusing_identity.servicer.attempts == []


async def test_the_device_cookie_reaches_identity(
    client: httpx.AsyncClient, refusing_identity: RefusingServer
) -> None:
    client.cookies.set("guichet_device", "d1.kid.user.device.1.mac", path="/v1/auth")
    await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
    assert refusing_identity.servicer.login_devices == ["d1.kid.user.device.1.mac"]


async def test_login_sends_the_client_address(
    client_for: ClientFactory, refusing_identity: RefusingServer
) -> None:
    async with client_for(trusted_proxy_count=1) as client:
        await client.post(
            "/v1/auth/token",
            json={"username": "a", "password": "b"},
            headers={"x-forwarded-for": "1.2.3.4, 198.51.100.9"},
        )
        await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
    # Only the hop our one trusted proxy appended counts; "1.2.3.4" is client-written. Without
    # the header (the proxy was bypassed) the peer address is used.
    assert refusing_identity.servicer.login_addresses == ["198.51.100.9", "203.0.113.7"]
    # Public calls carry no user token (the channel adds the service token when configured).
    assert "authorization" not in refusing_identity.servicer.metadata[-1]


def _request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope: dict[str, Any] = {"type": "http", "headers": headers, "client": (peer, 1234)}
    return Request(scope)


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1"),  # no proxies: the header is ignored
        (1, "1.2.3.4, 198.51.100.9", "198.51.100.9"),
        (2, "1.2.3.4, 198.51.100.9, 10.0.0.2", "198.51.100.9"),
        (2, "198.51.100.9", "10.0.0.1"),  # fewer hops than proxies: bypassed, use the peer
        (1, "not-an-ip", "10.0.0.1"),
        (1, None, "10.0.0.1"),
    ],
)
def test_client_ip(trusted: int, forwarded: str | None, expected: str) -> None:
    assert client_ip(_request("10.0.0.1", forwarded), trusted) == expected


# --- authentication --------------------------------------------------------------------------


async def test_missing_token_is_a_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="guichet"'


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("Bearer garbage", "malformed"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer ", None),
    ],
)
async def test_bad_authorization_is_a_401(
    client: httpx.AsyncClient, header: str, why: str | None
) -> None:
    response = await client.get("/v1/me", headers={"authorization": header})
    body = assert_problem(response, 401)
    if why:
        assert why in body["detail"]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"lifetime": -3600}, "expired"),
        ({"aud": "someone-else"}, "invalid"),
        ({"iss": "https://evil.example"}, "invalid"),
        ({"typ": "service"}, "not a user token"),
    ],
)
async def test_refused_tokens(
    client: httpx.AsyncClient, keys: SigningKeys, claims: dict[str, Any], why: str
) -> None:
    response = await client.get(
        "/v1/me", headers={"authorization": f"Bearer {keys.token(**claims)}"}
    )
    assert why in assert_problem(response, 401)["detail"]


async def test_token_from_another_key_is_refused(client: httpx.AsyncClient) -> None:
    stranger = SigningKeys()
    response = await client.get("/v1/me", headers={"authorization": f"Bearer {stranger.token()}"})
    assert "unknown key" in assert_problem(response, 401)["detail"]


async def test_valid_token_is_forwarded_to_identity(
    client: httpx.AsyncClient, keys: SigningKeys, refusing_identity: RefusingServer
) -> None:
    token = keys.token()
    response = await client.get("/v1/me", headers={"authorization": f"Bearer {token}"})
    # The test server refuses; what matters is what it received.
    assert_problem(response, 403)
    assert refusing_identity.servicer.metadata[-1]["authorization"] == f"Bearer {token}"


# --- probes ----------------------------------------------------------------------------------


async def test_healthz_needs_nothing() -> None:
    app = create_app(GatewaySettings(identity_addr="127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/healthz")
        assert response.json() == {"status": "ok"}
        # Without a lifespan there is no identity link: not ready, said as a problem.
        ready = await client.get("/readyz")
        assert ready.status_code == 503


async def test_readyz_follows_identity_health(
    client: httpx.AsyncClient, refusing_identity: RefusingServer
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    await refusing_identity.set_serving(False)
    response = await client.get("/readyz")
    assert_problem(response, 503, traced=False)
    assert response.headers["retry-after"] == "1"
    await refusing_identity.set_serving(True)
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_not_ready_without_a_service_token(client_for: ClientFactory) -> None:
    """Readiness goes through the real channel: credentials identity refuses keep it at 503."""
    async with client_for(service_client_id="gateway", service_client_secret="x" * 32) as client:
        assert_problem(await client.get("/readyz"), 503, traced=False)


# --- contract --------------------------------------------------------------------------------


def test_enums_match_the_proto() -> None:
    kinds = {
        n.removeprefix("ORGANISATION_KIND_").lower()
        for n in identity_pb2.OrganisationKind.keys()  # noqa: SIM118
        if not n.endswith("UNSPECIFIED")
    }
    assert kinds == {k.value for k in OrganisationKind}
    for kind in OrganisationKind:
        assert OrganisationKind.from_proto(kind.to_proto()) is kind
    statuses = {
        n.removeprefix("USER_STATUS_").lower()
        for n in identity_pb2.UserStatus.keys()  # noqa: SIM118
        if not n.endswith("UNSPECIFIED")
    }
    assert statuses == {s.value for s in UserStatus}


ROUTES = {
    ("post", "/v1/auth/token"),
    ("post", "/v1/auth/second-factor"),
    ("post", "/v1/auth/passkey/options"),
    ("post", "/v1/auth/passkey"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/auth/jwks"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/v1/registrations"),
    ("post", "/v1/registrations/verify-email"),
    ("post", "/v1/registrations/resend-verification"),
    ("post", "/v1/password/forgot"),
    ("post", "/v1/password/reset"),
    ("get", "/v1/me"),
    ("put", "/v1/me/profile"),
    ("get", "/v1/me/second-factors"),
    ("post", "/v1/me/second-factors/totp"),
    ("post", "/v1/me/second-factors/totp/confirm"),
    ("delete", "/v1/me/second-factors/totp"),
    ("post", "/v1/me/second-factors/recovery-codes"),
    ("post", "/v1/me/passkeys/options"),
    ("post", "/v1/me/passkeys"),
    ("delete", "/v1/me/passkeys/{passkey_id}"),
    ("post", "/v1/accounts/{user_id}/second-factors/reset"),
    ("put", "/v1/organisations/{organisation_id}/second-factor-policy"),
    ("get", "/v1/organisations"),
    ("post", "/v1/organisations"),
    ("get", "/v1/organisations/{organisation_id}"),
    ("get", "/v1/organisations/{organisation_id}/members"),
    ("get", "/v1/organisations/{organisation_id}/accounts"),
    ("get", "/v1/organisations/{organisation_id}/accounts/to-validate"),
    ("post", "/v1/organisations/{organisation_id}/accounts"),
    ("get", "/v1/accounts/{user_id}"),
    ("post", "/v1/accounts/{user_id}/validate"),
    ("put", "/v1/accounts/{user_id}/email"),
    ("post", "/v1/accounts/{user_id}/password-reset"),
    ("post", "/v1/accounts/{user_id}/roles"),
    ("delete", "/v1/accounts/{user_id}/roles/{organisation_id}/{role}"),
    ("get", "/v1/accounts/{user_id}/audit"),
    ("post", "/v1/operator/username-recovery"),
    ("post", "/v1/operator/signing-keys/rotate"),
    ("get", "/v1/providers/{provider_id}/relationships"),
    ("get", "/v1/providers/{provider_id}/available-clients"),
    ("get", "/v1/providers/{provider_id}/groups"),
    ("post", "/v1/providers/{provider_id}/groups"),
    ("get", "/v1/providers/{provider_id}/groups/{group_id}"),
    ("delete", "/v1/providers/{provider_id}/groups/{group_id}"),
    ("get", "/v1/providers/{provider_id}/groups/{group_id}/clients"),
    ("post", "/v1/providers/{provider_id}/groups/{group_id}/access-summary"),
    ("post", "/v1/providers/{provider_id}/groups/{group_id}/changes"),
    ("get", "/v1/providers/{provider_id}/employees"),
    ("post", "/v1/providers/{provider_id}/employees/assignments"),
    ("get", "/v1/providers/{provider_id}/process-requests"),
    ("get", "/v1/providers/{provider_id}/process-requests/{process_request_id}"),
    ("get", "/v1/providers/{provider_id}/process-requests/{process_request_id}/failures"),
    ("post", "/v1/providers/{provider_id}/process-requests/{process_request_id}/retry"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
PUBLIC = {
    "/v1/auth/token",
    "/v1/auth/second-factor",
    "/v1/auth/passkey/options",
    "/v1/auth/passkey",
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/auth/jwks",
    "/.well-known/jwks.json",
    "/v1/registrations",
    "/v1/registrations/organisations/{organisation_id}",  # an invitation link's organisation
    "/v1/registrations/verify-email",
    "/v1/registrations/resend-verification",
    "/v1/password/forgot",
    "/v1/password/reset",
    "/healthz",
    "/readyz",
    # Membership's public face: a civilian registers for a training or asks for first-aid cover.
    "/v1/associations/{association_id}/public-trainings",
    "/v1/associations/{association_id}/trainings/{training_id}/registrations",
    "/v1/associations/{association_id}/dps-requests",
}


def _refs(schema: dict[str, Any]) -> list[str]:
    """The component names a property points at, through Optional (anyOf) and lists."""
    names = [schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            names += _refs(option)
    if isinstance(schema.get("items"), dict):
        names += _refs(schema["items"])
    return names


def _fields_without_examples(
    schema: dict[str, Any], components: dict[str, Any], seen: set[str] | None = None
) -> list[str]:
    """Every field of a request body and of the models it nests, lacking an example: a field
    holding a model is documented by that model's fields; anything else (text, numbers, dates,
    enums, lists of ids) carries its own example."""
    seen = set() if seen is None else seen
    missing: list[str] = []
    for name in _refs(schema):
        if name in seen:
            continue
        seen.add(name)
        for field, prop in components[name].get("properties", {}).items():
            models = [r for r in _refs(prop) if "properties" in components[r]]
            if models:
                missing += _fields_without_examples(prop, components, seen)
            elif not prop.get("examples"):
                missing.append(f"{name}.{field}")
    return missing


def _has_examples(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("examples"):
        return True
    properties = schema.get("properties", {})
    return bool(properties) and all(
        p.get("examples") or _refs(p) or p.get("type") == "array" for p in properties.values()
    )


async def test_openapi_lists_every_route_with_problems_and_examples(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]
    operations = {
        (method, path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) >= ROUTES  # every service adds its own; identity's are all here
    assert "HTTPValidationError" not in components
    assert components["Problem"]["examples"]
    for (_method, path), op in operations.items():
        responses = op["responses"]
        # 422 is ours now (a rule beyond the schema), never FastAPI's HTTPValidationError.
        errors = {code: r for code, r in responses.items() if int(code) >= 400}
        assert errors or path == "/healthz", path
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (path, code)
        # Examples on every field, on every route: of every request body, nested models
        # included, and of every success body (a field holding a model or a list is documented
        # by that model's own examples).
        if "requestBody" in op:
            schema = op["requestBody"]["content"].get("application/json", {}).get("schema")
            if schema is not None:
                assert not _fields_without_examples(schema, components), (
                    path,
                    _fields_without_examples(schema, components),
                )
            assert "400" in responses, path
        ok = [r for code, r in responses.items() if code.startswith("2")]
        assert ok, path
        for success in ok:  # a sign-in has two outcomes (tokens, or a second-factor ticket)
            for media_type, content in success.get("content", {}).items():
                if media_type == "application/json" and not path.startswith("/.well"):
                    assert _has_examples(content["schema"], components), path
        if op["security"] == []:
            assert path in PUBLIC, f"{path} answers without a token but is not declared public"
        else:
            assert op["security"] == [{"bearer": []}], path
            assert "401" in responses, path
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"login": "a\\u0000b"}',  # NUL: PostgreSQL cannot store it
        b'{"login": "a\\udb0cb"}',  # unpaired surrogate: not encodable as UTF-8
        b'{"login": "ok", "\\u0000": 1}',  # in a key
    ],
)
async def test_text_no_service_could_store_is_a_400_naming_the_field(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        "/v1/password/forgot", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields and all(f in ("login", "\x00") for f in fields)


async def test_nul_in_the_query_string_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/organisations?kind=%00")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query"


async def test_ordinary_unicode_passes_the_text_guard(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "élodie.müller"})
    assert response.status_code == 202


# --- body limits: small JSON everywhere, files on the upload routes --------------------------

ATTACHMENT = "/v1/support/tickets/00000000-0000-4000-8000-000000000001/attachments?filename=a.pdf"
PROOF = (
    "/v1/partners/00000000-0000-4000-8000-000000000002/bank-detail-changes/"
    "00000000-0000-4000-8000-000000000003/proof?filename=rib.pdf"
)
UPLOAD_LIMIT = GatewaySettings.model_fields["max_upload_bytes"].default


def _streamed(size: int) -> Any:
    """A body without Content-Length, so the limit must hold while reading."""

    async def chunks() -> Any:
        for start in range(0, size, 64 * 1024):
            yield b"x" * min(64 * 1024, size - start)

    return chunks()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/support/tickets"), ("POST", "/v1/partners/x/messages"), ("PUT", ATTACHMENT)],
)
async def test_a_100_kib_json_body_off_the_upload_routes_is_a_413(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """Next to the uploads too: the attachment path takes its larger limit on POST only."""
    response = await client.request(method, path, json={"body": "x" * (100 * 1024)})
    assert assert_problem(response, 413)["type"].endswith("/content_too_large")
    streamed = await client.request(
        method, path, content=_streamed(100 * 1024), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413)


@pytest.mark.parametrize(("method", "path"), [("POST", ATTACHMENT), ("PUT", PROOF)])
async def test_uploads_pass_the_edge_up_to_the_upload_limit(
    client_for: ClientFactory, keys: SigningKeys, method: str, path: str
) -> None:
    """A 1 MiB file reaches the service (here: none listens, so 503); past the upload limit the
    edge answers 413, whether the size is declared or only found while reading."""
    nowhere = "127.0.0.1:9"
    auth = {"authorization": f"Bearer {keys.token()}", "content-type": "application/pdf"}
    async with client_for(support_addr=nowhere, partners_addr=nowhere) as client:
        mebibyte = b"%PDF-1.7\n" + b"x" * (1024 * 1024)
        passed = await client.request(method, path, content=mebibyte, headers=auth)
        assert_problem(passed, 503)
        streamed = await client.request(method, path, content=_streamed(1024 * 1024), headers=auth)
        assert_problem(streamed, 503)
        declared = await client.request(
            method, path, content=b"x" * (UPLOAD_LIMIT + 1), headers=auth
        )
        assert assert_problem(declared, 413)["type"].endswith("/content_too_large")
        read = await client.request(method, path, content=_streamed(UPLOAD_LIMIT + 1), headers=auth)
        assert assert_problem(read, 413)["type"].endswith("/content_too_large")


async def test_the_upload_limit_is_a_setting_bounded_by_the_grpc_message(
    client_for: ClientFactory, keys: SigningKeys
) -> None:
    with pytest.raises(ValueError, match="max_upload_bytes"):
        GatewaySettings(identity_addr="127.0.0.1:9", max_upload_bytes=5 * 1024 * 1024)
    auth = {"authorization": f"Bearer {keys.token()}", "content-type": "application/pdf"}
    async with client_for(max_upload_bytes=512 * 1024, support_addr="127.0.0.1:9") as client:
        response = await client.post(ATTACHMENT, content=b"x" * (512 * 1024 + 1), headers=auth)
        assert_problem(response, 413)


async def test_openapi_declares_the_upload_limit_on_the_upload_routes(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    uploads = [
        paths["/v1/support/tickets/{ticket_id}/attachments"]["post"],
        paths["/v1/partners/{store_id}/bank-detail-changes/{change_id}/proof"]["put"],
    ]
    for operation in uploads:
        too_large = operation["responses"]["413"]
        assert "MAX_UPLOAD_BYTES" in too_large["description"]
        assert list(too_large["content"]) == ["application/problem+json"]
    message = paths["/v1/support/tickets/{ticket_id}/messages"]["post"]["responses"]["413"]
    assert message["description"] == "The request body is too large."
