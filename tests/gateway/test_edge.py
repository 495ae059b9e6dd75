"""The edge itself: request ids, security headers, CORS, the auth brake, tokens, probes, OpenAPI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from guichet.identity.v1 import identity_pb2
from starlette.requests import Request

from services.gateway.app import create_app
from services.gateway.ratelimit import TokenBucketLimiter, bucket_key, client_ip
from services.gateway.schemas import OrganisationKind, UserStatus
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


# --- the auth brake --------------------------------------------------------------------------


async def test_login_is_braked_per_address_and_route(client_for: ClientFactory) -> None:
    async with client_for(auth_rate_limit_per_minute=6, auth_rate_limit_burst=3) as client:
        codes = [
            (
                await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
            ).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        refused = await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
        body = assert_problem(refused, 429)
        assert body["type"].endswith("/rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        # Another route has its own bucket; authenticated routes have none.
        assert (await client.post("/v1/password/forgot", json={"login": "x"})).status_code == 202


async def test_brake_can_be_turned_off(client_for: ClientFactory) -> None:
    async with client_for(auth_rate_limit_per_minute=0, auth_rate_limit_burst=1) as client:
        for _ in range(5):
            response = await client.post("/v1/auth/token", json={"username": "a", "password": "b"})
            assert response.status_code == 401


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


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(60, 2, clock=lambda: now[0])
    key = ("198.51.100.9", "/v1/auth/token")
    assert limiter.acquire(key) is None
    assert limiter.acquire(key) is None
    assert limiter.acquire(key) == pytest.approx(1.0)
    now[0] = 0.5
    assert limiter.acquire(key) == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.acquire(key) is None
    assert limiter.acquire(("198.51.100.10", "/v1/auth/token")) is None


def test_token_bucket_forgets_beyond_its_capacity() -> None:
    limiter = TokenBucketLimiter(60, 1, clock=lambda: 0.0, max_keys=2)
    for address in ("a", "b", "c"):
        assert limiter.acquire((address, "/")) is None
    assert limiter.acquire(("c", "/")) is not None
    assert limiter.acquire(("a", "/")) is None  # forgotten, starts afresh


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


def test_ipv6_clients_share_their_64() -> None:
    assert bucket_key("2001:db8:1:2:aaaa::1") == bucket_key("2001:db8:1:2:bbbb::2")
    assert bucket_key("2001:db8:1:3::1") != bucket_key("2001:db8:1:2::1")
    assert bucket_key("::ffff:198.51.100.9") == "198.51.100.9"


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
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/auth/jwks",
    "/.well-known/jwks.json",
    "/v1/registrations",
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


def _has_examples(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("examples"):
        return True
    properties = schema.get("properties", {})
    return bool(properties) and all(
        p.get("examples") or "$ref" in p or p.get("type") == "array" for p in properties.values()
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
        assert "422" not in responses, path
        errors = {code: r for code, r in responses.items() if int(code) >= 400}
        assert errors or path == "/healthz", path
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (path, code)
        # Examples on every field: identity's routes so far (the other services' are a gap the
        # closing note names).
        documented = (_method, path) in ROUTES
        if "requestBody" in op:
            schema = op["requestBody"]["content"].get("application/json", {}).get("schema")
            assert schema is None or _has_examples(schema, components) or not documented, path
            assert "400" in responses, path
        ok = [r for code, r in responses.items() if code.startswith("2")]
        assert len(ok) == 1, path
        for content in ok[0].get("content", {}).values():
            if documented and not path.startswith("/.well"):
                assert _has_examples(content["schema"], components), path
        if "security" not in op:
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
