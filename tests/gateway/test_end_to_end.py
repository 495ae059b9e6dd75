"""The gateway in front of the real identity service: the journeys a portal's clients make.

Real PostgreSQL, identity on a real gRPC port, its outbox relayed to the real Temporal dev server,
the mail worker delivering to the SMTP sink, and the gateway app driven over ASGI. Membership runs
beside identity, which asks it whether an association member's fee is paid before validating the
account. Nothing is mocked. Every response is checked never to be a 5xx.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from services.devstack.signin import fresh_code
from services.gateway.app import create_app
from services.gateway.idempotency import IdempotencyStore
from services.gateway.settings import GatewaySettings
from services.identity import keys as identity_keys
from services.identity.models import SigningKey, User
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.mail import new_sealing_key
from services.kit.ports import free_port
from services.kit.runtime import ServiceContext, start_service
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, wait_until
from services.membership.servicer import SPEC as MEMBERSHIP_SPEC
from services.membership.settings import MembershipSettings
from tests.gateway.test_problems import assert_problem
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

ADMIN_USERNAME = "Ops.Root"
ADMIN_PASSWORD = "bootstrap-secret-for-gateway-tests"
# ops_admin needs a second factor: the bootstrap admin's TOTP.
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLIENT_ID = "gateway"
CLIENT_SECRET = "gateway-secret-" + "0123456789abcdef"
MEMBERSHIP_CLIENT = ("membership", "membership-secret-" + "0123456789abcdef")
PASSWORD = "correct horse battery staple"
PROFILE = {
    "first_name": "Jean",
    "last_name": "Dupont",
    "phone": "+33 6 12 34 56 78",
    "address_line": "12 rue de la République",
    "postal_code": "83000",
    "city": "Toulon",
    "birth_date": "1984-05-17",
}
_LINK_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _no_server_errors(response: httpx.Response) -> None:
    """Event hook: whatever the input, no route may answer 5xx."""
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(f"{response.request.method} {response.request.url}: {response.text}")


@dataclass
class Stack:
    http: httpx.AsyncClient
    smtp: SmtpSink
    context: ServiceContext
    link: IdentityLink
    admin_token: str
    association_id: str
    association_admin_token: str

    async def link_token(self, address: str, *, count: int = 1, path: str = "") -> str:
        """The token in the `count`-th mail to `address` holding a link to `path`: what the
        person would click. Mails without that link (the notice that an account was validated)
        are passed over, whichever order the workflows sent them in."""
        received = 1
        while True:
            mails = await self.smtp.wait_for(address, count=received)
            linked = [mail for mail in mails if path in mail.body]
            if len(linked) >= count:
                break
            received = len(mails) + 1
        body = linked[count - 1].body
        match = _LINK_TOKEN.search(body)
        assert match is not None, body
        return match.group(1)

    async def login(
        self, username: str, password: str = PASSWORD, *, totp_secret: str | None = None
    ) -> str:
        response = await self.http.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        if response.status_code == 202 and totp_secret:  # the account has a second factor
            code = await fresh_code(totp_secret, username)
            response = await self.http.post(
                "/v1/auth/second-factor", json={"ticket": response.json()["ticket"], "code": code}
            )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def register(self, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        username = unique("Dupont.Jean.")
        body: dict[str, Any] = {
            "organisation_id": self.association_id,
            "username": username,
            "email": f"{username.lower()}@example.org",
            "password": PASSWORD,
            "first_name": "Jean",
            "last_name": unique("Dupont"),
        }
        body.update(overrides)
        response = await self.http.post("/v1/registrations", json=body)
        assert response.status_code == 201, response.text
        return body, response.json()

    async def active_member(self) -> tuple[dict[str, Any], str]:
        """A registered, verified, completed and validated member, and their token."""
        body, user = await self.register()
        token = await self.link_token(body["email"], path="/verify-email")
        assert (
            await self.http.post("/v1/registrations/verify-email", json={"token": token})
        ).status_code == 200
        member_token = await self.login(body["username"])
        profile = {**PROFILE, "last_name": body["last_name"]}
        response = await self.http.put("/v1/me/profile", json=profile, headers=bearer(member_token))
        assert response.status_code == 200, response.text
        await self.pay_fee(user["id"], body["last_name"])
        response = await self.http.post(
            f"/v1/accounts/{user['id']}/validate", headers=bearer(self.association_admin_token)
        )
        assert response.status_code == 200, response.text
        return body, await self.login(body["username"])

    async def pay_fee(self, user_id: str, last_name: str) -> None:
        """The association's admin records the account as a member and this year's fee."""
        admin = bearer(self.association_admin_token)
        member = await self.http.post(
            f"/v1/associations/{self.association_id}/members",
            json={"user_id": user_id, "first_name": "Jean", "last_name": last_name},
            headers=admin,
        )
        assert member.status_code == 201, member.text
        fee = await self.http.post(
            f"/v1/associations/{self.association_id}/members/{member.json()['id']}/fees",
            json={"year": datetime.now(UTC).year, "amount_cents": 3500},
            headers=admin,
        )
        assert fee.status_code == 201, fee.text


@pytest.fixture(scope="module")
async def stack(
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
    idempotency: IdempotencyStore,
) -> AsyncIterator[Stack]:
    url = await pg.migrated_database(SPEC.migrations_dir, "identity")
    membership_url = await pg.migrated_database(MEMBERSHIP_SPEC.migrations_dir, "membership")
    # Identity starts first and must know where membership will listen: one port chosen up front.
    membership_port = free_port()
    sealing_key = new_sealing_key()
    queue = f"gateway-{uuid.uuid4()}"
    identity_settings = IdentitySettings(
        service_name="identity",
        database_url=url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=queue,
        mail_sealing_key=sealing_key,
        service_clients=f"{CLIENT_ID}={CLIENT_SECRET},{'='.join(MEMBERSHIP_CLIENT)}",
        membership_addr=f"127.0.0.1:{membership_port}",
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_totp_secret=ADMIN_TOTP_SECRET,
        bootstrap_admin_email="ops.root@example.org",
        public_base_url="https://portail.example.org",
        link_resend_cooldown_seconds=0,
        # Every request here comes from one address: the per-address brake of the public routes
        # would refuse this module's registrations (it is tested in test_shared_brakes.py).
        auth_rate_limit_per_minute=0,
    )
    worker = build_worker(
        temporal_env.client,
        WorkerSettings(
            smtp_port=smtp_sink.port, mail_sealing_key=sealing_key, temporal_task_queue=queue
        ),
        task_queue=queue,
    )
    async with worker:
        context, server = await start_service(SPEC, identity_settings)
        membership_context, membership_server = await start_service(
            MEMBERSHIP_SPEC,
            MembershipSettings(
                service_name="membership",
                database_url=membership_url,
                grpc_host="127.0.0.1",
                grpc_port=membership_port,
                shutdown_grace=0,
                log_json=False,
                temporal_address=identity_settings.temporal_address,
                temporal_task_queue=queue,
                identity_addr=f"127.0.0.1:{server.port}",
                service_client_id=MEMBERSHIP_CLIENT[0],
                service_client_secret=MEMBERSHIP_CLIENT[1],
                mail_sealing_key=sealing_key,
            ),
        )
        gateway_settings = GatewaySettings(
            identity_addr=f"127.0.0.1:{server.port}",
            membership_addr=f"127.0.0.1:{membership_port}",
            service_client_id=CLIENT_ID,
            service_client_secret=CLIENT_SECRET,
        )
        link = connect_identity(gateway_settings)
        app = create_app(gateway_settings, identity=link, idempotency=idempotency)
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
        http = httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            event_hooks={"response": [_no_server_errors]},
        )
        try:
            partial = Stack(http, smtp_sink, context, link, "", "", "")
            partial.admin_token = await partial.login(
                ADMIN_USERNAME, ADMIN_PASSWORD, totp_secret=ADMIN_TOTP_SECRET
            )
            response = await http.post(
                "/v1/organisations",
                json={"kind": "association", "name": unique("Protection civile "), "code": "83"},
                headers=bearer(partial.admin_token),
            )
            assert response.status_code == 201, response.text
            partial.association_id = response.json()["id"]
            admin_name = unique("Admin.Asso.")
            admin_email = f"{admin_name.lower()}@example.org"
            response = await http.post(
                f"/v1/organisations/{partial.association_id}/accounts",
                json={
                    "username": admin_name,
                    "email": admin_email,
                    "first_name": "Claire",
                    "last_name": "Martin",
                    "roles": ["association_admin"],
                },
                headers=bearer(partial.admin_token),
            )
            assert response.status_code == 201, response.text
            welcome = await partial.link_token(admin_email, path="/reset-password")
            response = await http.post(
                "/v1/password/reset", json={"token": welcome, "new_password": PASSWORD}
            )
            assert response.status_code == 204, response.text
            partial.association_admin_token = await partial.login(admin_name)
            yield partial
        finally:
            await http.aclose()
            await link.close()
            await membership_server.stop()
            await membership_context.exit_stack.aclose()
            await server.stop()
            await context.exit_stack.aclose()


# --- journeys ----------------------------------------------------------------------------------


async def test_registration_to_validated_account(stack: Stack) -> None:
    http, admin = stack.http, bearer(stack.association_admin_token)
    body, user = await stack.register()
    assert user["status"] == "pending" and user["pending"] is True
    assert user["email_verified"] is False and user["profile_complete"] is False
    assert user["username"] == body["username"]  # case kept as typed
    assert user["create_time"].endswith("Z") or "+00:00" in user["create_time"]

    token = await stack.link_token(body["email"], path="/verify-email")
    verified = await http.post("/v1/registrations/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True
    again = await http.post("/v1/registrations/verify-email", json={"token": token})
    assert assert_problem(again, 409)["type"].endswith("/link_used")

    # Logging in is case-insensitive; the pending member completes their information.
    member = bearer(await stack.login(body["username"].upper()))
    me = await http.get("/v1/me", headers=member)
    assert me.status_code == 200 and me.json()["status"] == "pending"
    profile = {**PROFILE, "last_name": body["last_name"]}
    completed = await http.put("/v1/me/profile", json=profile, headers=member)
    assert completed.status_code == 200, completed.text
    assert completed.json()["profile_complete"] is True
    assert completed.json()["profile"]["birth_date"] == "1984-05-17"

    # The admin sees it in the queue and in a name search, flagged pending.
    queue = await http.get(
        f"/v1/organisations/{stack.association_id}/accounts/to-validate", headers=admin
    )
    assert queue.status_code == 200
    [queued] = [u for u in queue.json()["items"] if u["id"] == user["id"]]
    assert queued["pending"] is True
    found = await http.get(
        f"/v1/organisations/{stack.association_id}/accounts",
        params={"last_name": body["last_name"][:6].lower(), "first_name": "jean"},
        headers=admin,
    )
    assert found.status_code == 200
    assert [u["pending"] for u in found.json()["items"] if u["id"] == user["id"]] == [True]

    # An association validates only members whose fee of the year is recorded (membership).
    unpaid = await http.post(f"/v1/accounts/{user['id']}/validate", headers=admin)
    problem = assert_problem(unpaid, 409)
    assert problem["type"].endswith("/fee_unpaid")
    assert "fee" in problem["detail"]
    still = await http.get(f"/v1/accounts/{user['id']}", headers=admin)
    assert still.json()["status"] == "pending" and still.json()["memberships"] == []
    await stack.pay_fee(user["id"], body["last_name"])
    validated = await http.post(f"/v1/accounts/{user['id']}/validate", headers=admin)
    assert validated.status_code == 200, validated.text
    assert validated.json()["status"] == "active" and validated.json()["pending"] is False
    twice = await http.post(f"/v1/accounts/{user['id']}/validate", headers=admin)
    assert assert_problem(twice, 409)["type"].endswith("/not_pending")

    fresh = bearer(await stack.login(body["username"]))
    me = (await http.get("/v1/me", headers=fresh)).json()
    assert me["status"] == "active"
    assert me["memberships"] == [{"organisation_id": stack.association_id, "role": "member"}]
    queue = await http.get(
        f"/v1/organisations/{stack.association_id}/accounts/to-validate", headers=admin
    )
    assert user["id"] not in {u["id"] for u in queue.json()["items"]}


async def test_forgotten_password_journey(stack: Stack) -> None:
    http = stack.http
    body, _ = await stack.active_member()
    unknown = await http.post("/v1/password/forgot", json={"login": "nobody@example.org"})
    known = await http.post("/v1/password/forgot", json={"login": body["email"]})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content == b""

    token = await stack.link_token(body["email"], path="/reset-password")
    weak = await http.post("/v1/password/reset", json={"token": token, "new_password": "short"})
    assert [e["field"] for e in assert_problem(weak, 400)["errors"]] == ["new_password"]
    new_password = "a different long passphrase"
    reset = await http.post(
        "/v1/password/reset", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204, reset.text
    reused = await http.post(
        "/v1/password/reset", json={"token": token, "new_password": "yet another passphrase"}
    )
    assert assert_problem(reused, 409)["type"].endswith("/link_used")

    old = await http.post(
        "/v1/auth/token", json={"username": body["username"], "password": PASSWORD}
    )
    assert assert_problem(old, 401)["type"].endswith("/invalid_credentials")
    assert old.headers["www-authenticate"].startswith("Bearer")
    assert await stack.login(body["username"], new_password)


async def test_refresh_rotation_and_logout(stack: Stack) -> None:
    http = stack.http
    body, _ = await stack.active_member()
    pair = (
        await http.post("/v1/auth/token", json={"username": body["username"], "password": PASSWORD})
    ).json()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] > 0
    rotated = await http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    new_pair = rotated.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    replayed = await http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(replayed, 401)
    logout = await http.post("/v1/auth/logout", json={"refresh_token": new_pair["refresh_token"]})
    assert logout.status_code == 204
    after = await http.post("/v1/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert_problem(after, 401)


async def test_jwks_and_key_rotation(stack: Stack) -> None:
    http = stack.http
    published = (await http.get("/.well-known/jwks.json")).json()
    assert published == (await http.get("/v1/auth/jwks")).json()
    assert all(key["kty"] == "OKP" and "d" not in key for key in published["keys"])

    member, _ = await stack.active_member()
    refused = await http.post(
        "/v1/operator/signing-keys/rotate", headers=bearer(await stack.login(member["username"]))
    )
    assert_problem(refused, 403)
    rotated = await http.post("/v1/operator/signing-keys/rotate", headers=bearer(stack.admin_token))
    assert rotated.status_code == 200
    kid = rotated.json()["kid"]
    assert kid in {k["kid"] for k in (await http.get("/v1/auth/jwks")).json()["keys"]}
    # A token signed with the new key is accepted once the gateway re-reads the key set (the kit
    # verifier re-reads at most every 5 s), and older tokens keep working meanwhile.
    token = await stack.login(member["username"])

    async def read_me() -> int | None:
        status = (await http.get("/v1/me", headers=bearer(token))).status_code
        return None if status == 401 else status

    status = await wait_until(
        read_me, what="a token of the new key to be accepted", within=8, every=0.5
    )
    assert status == 200
    assert (await http.get("/v1/me", headers=bearer(stack.admin_token))).status_code == 200


async def test_admin_account_care(stack: Stack) -> None:
    http, admin = stack.http, bearer(stack.association_admin_token)
    username = unique("Martin.Claire.")
    created = await http.post(
        f"/v1/organisations/{stack.association_id}/accounts",
        json={"username": username, "first_name": "Claire", "last_name": "Martin"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    user_id = user["id"]
    assert user["status"] == "active" and user["email"] is None
    assert user["memberships"] == [{"organisation_id": stack.association_id, "role": "member"}]
    account = await http.get(f"/v1/accounts/{user_id}", headers=admin)
    assert account.status_code == 200 and account.json()["username"] == username

    # The admin completes the missing address; its owner chooses a password from the mail.
    email = f"{username.lower()}@example.org"
    changed = await http.put(f"/v1/accounts/{user_id}/email", json={"email": email}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == email
    again = await http.put(f"/v1/accounts/{user_id}/email", json={"email": email}, headers=admin)
    assert assert_problem(again, 409)["type"].endswith("/email_present")
    welcome = await stack.link_token(email, path="/reset-password")
    chosen = await http.post(
        "/v1/password/reset", json={"token": welcome, "new_password": PASSWORD}
    )
    assert chosen.status_code == 204
    assert await stack.login(username)

    # "Re-send password" mails a link, never a password.
    sent = await http.post(f"/v1/accounts/{user_id}/password-reset", headers=admin)
    assert sent.status_code == 202 and sent.content == b""
    mails = await stack.smtp.wait_for(email, count=2)
    assert PASSWORD not in mails[-1].body and "/reset-password?token=" in mails[-1].body

    granted = await http.post(
        f"/v1/accounts/{user_id}/roles",
        json={"organisation_id": stack.association_id, "role": "association_admin"},
        headers=admin,
    )
    assert granted.status_code == 200, granted.text
    assert {m["role"] for m in granted.json()["memberships"]} == {"member", "association_admin"}
    admins = await http.get(
        f"/v1/organisations/{stack.association_id}/members",
        params={"role": "association_admin"},
        headers=admin,
    )
    assert user_id in {u["id"] for u in admins.json()["items"]}
    revoked = await http.delete(
        f"/v1/accounts/{user_id}/roles/{stack.association_id}/association_admin", headers=admin
    )
    assert revoked.status_code == 200
    assert {m["role"] for m in revoked.json()["memberships"]} == {"member"}

    audit = await http.get(f"/v1/accounts/{user_id}/audit", headers=admin)
    assert audit.status_code == 200
    events = {e["event"] for e in audit.json()["items"]}
    assert {
        "user.created",
        "user.email_set",
        "password_reset.sent",
        "password_reset.used",
    } <= events
    assert all(e["time"] for e in audit.json()["items"])

    organisation = await http.get(f"/v1/organisations/{stack.association_id}", headers=admin)
    assert organisation.json()["kind"] == "association"
    assert organisation.json()["code"] == "83"
    listed = await http.get(
        "/v1/organisations",
        params={"kind": "association", "page_size": 500},
        headers=bearer(stack.admin_token),
    )
    assert stack.association_id in {o["id"] for o in listed.json()["items"]}
    assert all(o["kind"] == "association" for o in listed.json()["items"])


async def test_operator_username_recovery(stack: Stack) -> None:
    body, _ = await stack.active_member()
    response = await stack.http.post(
        "/v1/operator/username-recovery",
        json={"email": body["email"], "verification_reference": "ticket 4521, ID card seen"},
        headers=bearer(stack.admin_token),
    )
    assert response.status_code == 202, response.text
    mails = await stack.smtp.wait_for(body["email"], count=2)
    assert body["username"] in mails[-1].body


# --- refusals ----------------------------------------------------------------------------------


async def test_bad_tokens_are_401_problems(stack: Stack) -> None:
    http = stack.http
    body, token = await stack.active_member()
    async with stack.context.sessions.begin() as session:
        key = (
            (await session.execute(select(SigningKey).order_by(SigningKey.created_at.desc())))
            .scalars()
            .first()
        )
        assert key is not None
        user_id = str(
            (
                await session.execute(select(User.id).where(User.username == body["username"]))
            ).scalar_one()
        )
    now = int(time.time())
    expired = identity_keys.sign(
        {
            "sub": user_id,
            "typ": "user",
            "iss": "guichet-identity",
            "aud": "guichet",
            "iat": now - 3600,
            "exp": now - 1800,
        },
        kid=key.kid,
        pem=key.private_key_pem,
    )
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for value, why in (
        (expired, "expired"),
        (tampered, "invalid"),
        ("garbage", "malformed"),
    ):
        response = await http.get("/v1/me", headers=bearer(value))
        assert why in assert_problem(response, 401)["detail"]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert_problem(await http.get("/v1/me"), 401)


async def test_bad_registrations_change_nothing(stack: Stack) -> None:
    http = stack.http
    username = unique("Martin.Paul.")
    good: dict[str, Any] = {
        "organisation_id": stack.association_id,
        "username": username,
        "email": f"{username.lower()}@example.org",
        "password": PASSWORD,
        "first_name": "Paul",
        "last_name": "Martin",
    }
    missing = await http.post("/v1/registrations", json={"username": username})
    assert {e["field"] for e in assert_problem(missing, 400)["errors"]} == {
        "organisation_id",
        "email",
        "password",
        "first_name",
        "last_name",
    }
    wrong_types = await http.post(
        "/v1/registrations", json={**good, "organisation_id": 42, "first_name": ["Paul"]}
    )
    assert {e["field"] for e in assert_problem(wrong_types, 400)["errors"]} == {
        "organisation_id",
        "first_name",
    }
    # What the schema states is refused at the edge (an address, checked with identity's own
    # library), then identity's own rules (a password holding the username): each round names
    # every bad field of its kind.
    refused = await http.post(
        "/v1/registrations",
        json={**good, "email": "not-an-address", "password": username.lower() + "-secret"},
    )
    assert {e["field"] for e in assert_problem(refused, 400)["errors"]} == {"email"}
    weak = await http.post(
        "/v1/registrations", json={**good, "password": username.lower() + "-secret"}
    )
    errors = assert_problem(weak, 422)["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("password", "weak_password")]
    unknown_org = await http.post(
        "/v1/registrations", json={**good, "organisation_id": str(uuid.uuid4())}
    )
    assert_problem(unknown_org, 404)
    operator_org = await http.get(
        "/v1/organisations", params={"kind": "operator"}, headers=bearer(stack.admin_token)
    )
    closed = await http.post(
        "/v1/registrations",
        json={**good, "organisation_id": operator_org.json()["items"][0]["id"]},
    )
    assert assert_problem(closed, 409)["type"].endswith("/self_registration_closed")

    # None of that left an account behind: the username is still free, then taken (any case).
    assert (await http.post("/v1/registrations", json=good)).status_code == 201
    taken = await http.post("/v1/registrations", json={**good, "username": username.upper()})
    body = assert_problem(taken, 409)
    assert [e["field"] for e in body.get("errors", [])] in ([], ["username"])


async def test_bad_profile_changes_nothing(stack: Stack) -> None:
    http = stack.http
    _, token = await stack.active_member()
    member = bearer(token)
    before = (await http.get("/v1/me", headers=member)).json()
    bad_date = await http.put(
        "/v1/me/profile", json={**PROFILE, "birth_date": "17/05/1984"}, headers=member
    )
    assert [e["field"] for e in assert_problem(bad_date, 400)["errors"]] == ["birth_date"]
    shape = await http.put(
        "/v1/me/profile",
        json={**PROFILE, "birth_date": "2999-01-01", "phone": None, "postal_code": "not a code!"},
        headers=member,
    )
    # What the schema states is refused at the edge, every field at once (400)...
    fields = {e["field"] for e in assert_problem(shape, 400)["errors"]}
    assert fields == {"phone", "postal_code"}  # named as in the JSON body
    # ... what it cannot state (not in the future) by identity, same shape, 422.
    future = await http.put(
        "/v1/me/profile", json={**PROFILE, "birth_date": "2999-01-01"}, headers=member
    )
    errors = assert_problem(future, 422)["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("birth_date", "in_the_future")]
    # A number is not a date (it was stored as 1970-01-01).
    epoch = await http.put("/v1/me/profile", json={**PROFILE, "birth_date": 0}, headers=member)
    assert [e["field"] for e in assert_problem(epoch, 400)["errors"]] == ["birth_date"]
    assert (await http.get("/v1/me", headers=member)).json() == before


async def test_a_bad_refresh_token_says_refresh(stack: Stack) -> None:
    """A malformed refresh token was "not a valid link token"."""
    http = stack.http
    too_long = await http.post("/v1/auth/refresh", json={"refresh_token": "r" * 201})
    [error] = assert_problem(too_long, 400)["errors"]
    assert (error["field"], error["code"]) == ("refresh_token", "string_too_long")
    unknown = await http.post("/v1/auth/refresh", json={"refresh_token": "r" * 43})
    problem = assert_problem(unknown, 401)
    assert "link" not in problem["detail"]


async def test_search_authorises_before_it_validates(stack: Stack) -> None:
    """Another tenant's organisation is 404 whatever the query, not a 400 on the query."""
    http = stack.http
    _, token = await stack.active_member()
    for params in ({}, {"last_name": "a"}):
        response = await http.get(
            f"/v1/organisations/{stack.association_id}/accounts",
            params=params,
            headers=bearer(token),
        )
        assert response.status_code in (403, 404), (params, response.text)
    own = await http.get(
        f"/v1/organisations/{stack.association_id}/accounts",
        headers=bearer(stack.association_admin_token),
    )
    errors = assert_problem(own, 422)["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("last_name", "name_to_search")]


async def test_bad_ids_are_precise_problems(stack: Stack) -> None:
    http, admin = stack.http, bearer(stack.association_admin_token)
    for method, path, field in (
        ("GET", "/v1/accounts/42", "user_id"),
        ("POST", "/v1/accounts/not-a-uuid/validate", "user_id"),
        ("GET", "/v1/organisations/xyz/members", "organisation_id"),
        ("GET", "/v1/organisations/xyz/accounts/to-validate", "organisation_id"),
    ):
        response = await http.request(method, path, headers=admin)
        assert [e["field"] for e in assert_problem(response, 400)["errors"]] == [field]
    for method, path in (
        ("GET", f"/v1/accounts/{uuid.uuid4()}"),
        ("POST", f"/v1/accounts/{uuid.uuid4()}/validate"),
        ("POST", f"/v1/accounts/{uuid.uuid4()}/password-reset"),
        ("GET", f"/v1/organisations/{uuid.uuid4()}/accounts/to-validate"),
    ):
        response = await http.request(method, path, headers=bearer(stack.admin_token))
        assert_problem(response, 404)
    bad_role = await http.post(
        f"/v1/accounts/{uuid.uuid4()}/roles",
        json={"organisation_id": stack.association_id, "role": "Emperor"},
        headers=admin,
    )
    assert [e["field"] for e in assert_problem(bad_role, 400)["errors"]] == ["role"]


async def test_member_cannot_reach_admin_pages(stack: Stack) -> None:
    http = stack.http
    _, token = await stack.active_member()
    other, _ = await stack.register()
    member = bearer(token)
    other_id = (
        await http.get(
            f"/v1/organisations/{stack.association_id}/accounts",
            params={"last_name": other["last_name"]},
            headers=bearer(stack.association_admin_token),
        )
    ).json()["items"][0]["id"]
    attempts = [
        ("GET", f"/v1/organisations/{stack.association_id}/accounts/to-validate", None),
        ("GET", f"/v1/organisations/{stack.association_id}/accounts?last_name=a", None),
        ("GET", f"/v1/organisations/{stack.association_id}/members", None),
        ("POST", f"/v1/accounts/{other_id}/validate", None),
        ("GET", f"/v1/accounts/{other_id}", None),
        ("GET", f"/v1/accounts/{other_id}/audit", None),
        ("PUT", f"/v1/accounts/{other_id}/email", {"email": "x@example.org"}),
        ("POST", f"/v1/accounts/{other_id}/password-reset", None),
        (
            "POST",
            f"/v1/accounts/{other_id}/roles",
            {"organisation_id": stack.association_id, "role": "association_admin"},
        ),
        ("POST", "/v1/organisations", {"kind": "association", "name": "Mine", "code": "99"}),
        (
            "POST",
            "/v1/operator/username-recovery",
            {"email": other["email"], "verification_reference": "none"},
        ),
    ]
    for method, path, body in attempts:
        response = await http.request(method, path, json=body, headers=member)
        assert response.status_code in (403, 404), (path, response.text)
        assert_problem(response, response.status_code)
    still = await http.get(
        f"/v1/accounts/{other_id}", headers=bearer(stack.association_admin_token)
    )
    assert still.json()["status"] == "pending" and still.json()["email"] == other["email"]


async def test_ready_with_real_identity(stack: Stack) -> None:
    assert (await stack.http.get("/readyz")).json() == {"status": "ready"}
