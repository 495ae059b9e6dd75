"""Tenant isolation: every gateway route, every kind of caller, own and foreign tenant.

The list of routes comes from the gateway's own route table (`create_app(...).routes`); a route
without an entry in `TABLE` fails `test_every_route_has_an_expectation`, so nobody can add a
route without saying who may call it. For each route the table says which tenant its path names,
who succeeds and with what status, and what everyone else gets. Each cell is a real request to
the running stack, with a valid body, from one of tenant a's users (or an operator, or nobody),
with the path's ids pointing at:

* "own": tenant a's real ids;
* "foreign": tenant b's real ids;
* "missing": ids that exist nowhere; for every caller but operator staff the foreign answer
  must equal it (status, problem type, title, detail and field errors, ids masked), so no
  response tells whether another tenant's resource exists;
* "crossed" (rightful callers only): tenant a's organisation with tenant b's resource below it
  (`/v1/workshops/{a}/warranty-claims/{b's claim}`): 404, never the other tenant's data.

A caller of an unrelated kind (a workshop owner on a provider's page) gets the own side only:
tenant a's ids are already foreign to it. Public routes ignore the token, so a few callers show
it. Mutating calls of the rightful caller run last in each route's test (after the refusals,
which must not have changed anything), once, with the route's first allowed role; every other
cell is checked for its exact status, and none may be a 5xx. Body ids of another tenant are
test_foreign_ids.py's.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.security.harness import PASSWORD, PDF, Actor, Tenant, World, unique

OPS = "ops_admin"
SA = "support_agent"
OPERATORS = frozenset({OPS, SA})
PROVIDER_STAFF = ("business_account_manager", "program_account_manager", "editor", "read_only")
# Every kind of caller, and the organisation (key of Tenant.orgs) their role is held in.
ROLE_ORG: dict[str, str | None] = {
    "anonymous": None,
    "plain": None,  # a pending self-registered user: signed in, no role anywhere
    "member": "association",
    "association_admin": "association",
    "business_account_manager": "provider",
    "program_account_manager": "provider",
    "editor": "provider",
    "read_only": "provider",
    "partner_manager": "store",
    "workshop_owner": "workshop",
    "customer_user": "erp",
    SA: None,
    OPS: None,
}
SIGNED_IN = tuple(r for r in ROLE_ORG if r != "anonymous")
# Public routes ignore the token: these callers are enough to show that they answer everyone.
PUBLIC_CALLERS = ("anonymous", "plain", "customer_user", OPS)
EVERYONE = tuple(ROLE_ORG)

Body = Callable[[Tenant, World], Any]


@dataclass(frozen=True)
class Expect:
    """Who may call a route, and what each caller gets.

    `tenant`: the key (in `Tenant.orgs`) of the organisation the path names, or None when the
    path names no tenant (then there is no foreign cell). `ok`: the roles answered `status`
    (the first one makes the mutating call). `denied`: a member of the path's organisation
    without the role, or, for a path without tenant, any signed-in caller not in `ok`.
    `outsider`: everyone else (another tenant, another kind, the pending user). `operator`:
    operator staff not in `ok`. `public`: no token needed; everyone gets `status`.
    `params`: path parameter → where its value comes from (see `_resolve`).
    """

    tenant: str | None
    ok: tuple[str, ...]
    status: int = 200
    denied: int = 403
    outsider: int = 404
    operator: int = 403
    public: bool = False
    params: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    query: Body | None = None
    content: tuple[bytes, str] | None = None
    # Role-specific overrides: role → status (own and foreign).
    special: dict[str, int] = field(default_factory=dict)
    # Roles not called at all, each with its reason in the table (tested elsewhere).
    skip: frozenset[str] = frozenset()


def _days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


def _instant(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _trainee() -> dict[str, Any]:
    return {
        "trainee": {
            "first_name": unique("Paul"),
            "last_name": "Public",
            "birth_date": "1991-02-03",
            "email": "paul.public@security.example.com",
        }
    }


def _coverage() -> dict[str, Any]:
    return {
        "event_name": "Course",
        "event_date": _days(20),
        "location": "Stade",
        "expected_attendance": 50,
        "organiser": {
            "company_name": unique("Club "),
            "contact_name": "Zoé",
            "email": "zoe@security.example.com",
        },
    }


def _contacts(t: Tenant, w: World) -> dict[str, Any]:
    contact = {"name": "Contact", "email": "contact@security.example.com"}
    return {
        "workshop": {"name": "Garage", "email": "garage@security.example.com"},
        "wholesaler": contact,
        "distributor": contact,
    }


def _membership(t: Tenant, w: World) -> dict[str, Any]:
    return {**_contacts(t, w), "program_id": w.shared["program"], "renewal_date": _days(100)}


def _ticket(t: Tenant, w: World) -> dict[str, Any]:
    return {
        "category_id": w.shared["category"],
        "title": "Autre écran",
        "description": "Encore.",
        "screen_code": "ATW0002",
        "example_record": "client 101",
    }


def _user(t: Tenant, w: World) -> dict[str, Any]:
    return {"username": unique("made."), "first_name": "Made", "last_name": "Here"}


ASSOC = "association"
PROVIDER = "provider"
STORE = "store"
WORKSHOP = "workshop"
ERP = "erp"
TEAM = (OPS, SA)  # the program team of the banner program, operator staff
ASSOC_ADMINS = ("association_admin", OPS)

P_ORG = {"organisation_id": "org:association"}
P_USER = {"user_id": "user:member"}
P_PROVIDER = {"provider_id": "org:provider"}
P_GROUP = {**P_PROVIDER, "group_id": "id:group"}
P_REQUEST = {**P_PROVIDER, "process_request_id": "id:process_request"}
P_TICKET = {"ticket_id": "id:ticket"}
P_WORKSHOP = {"workshop_id": "org:workshop"}
P_ASSOC = {"association_id": "org:association"}
P_RECORD = {**P_ASSOC, "record_id": "id:registration_record"}
P_STORE = {"store_id": "org:store"}
P_ORDER = {**P_STORE, "order_id": "id:order"}
P_PRODUCT = {**P_STORE, "product_id": "id:product3"}
P_PROMOTION = {**P_STORE, "promotion_id": "id:promotion"}
P_BANK = {**P_STORE, "change_id": "id:bank_change"}

# A well-formed passkey answer that no account registered.
_PASSKEY_ANSWER = {
    "id": "AAAAAAAAAAAAAAAAAAAAAA",
    "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
    "type": "public-key",
    "response": {
        "clientDataJSON": "e30",
        "authenticatorData": "AAAA",
        "signature": "AAAA",
        "attestationObject": "AAAA",
    },
}

# fmt: off
TABLE: dict[tuple[str, str], Expect] = {
    # --- authentication, registration: public; the answer does not depend on the caller ---
    ("POST", "/v1/auth/token"): Expect(None, EVERYONE, public=True,
        body=lambda t, w: {"username": w.a.actors["plain"].username, "password": PASSWORD}),
    ("POST", "/v1/auth/refresh"): Expect(None, EVERYONE, 401, public=True,
        body=lambda t, w: {"refresh_token": "rt_not-a-token"}),
    ("POST", "/v1/auth/logout"): Expect(None, EVERYONE, 204, public=True,
        body=lambda t, w: {"refresh_token": "rt_not-a-token"}),
    ("GET", "/v1/auth/jwks"): Expect(None, EVERYONE, public=True),
    ("GET", "/.well-known/jwks.json"): Expect(None, EVERYONE, public=True),
    ("POST", "/v1/password/forgot"): Expect(None, EVERYONE, 202, public=True,
        body=lambda t, w: {"login": unique("nobody.")}),
    ("POST", "/v1/password/reset"): Expect(None, EVERYONE, 404, public=True,
        body=lambda t, w: {"token": "pr_not-a-token", "new_password": PASSWORD}),
    ("POST", "/v1/registrations"): Expect(None, EVERYONE, 201, public=True,
        body=lambda t, w: {"organisation_id": w.a.orgs[ASSOC], "username": unique("reg."),
                           "email": "reg@security.example.com", "password": PASSWORD,
                           "first_name": "Reg", "last_name": "Istered"}),
    # What an invitation link's page shows of its organisation (a's association takes sign-up).
    ("GET", "/v1/registrations/organisations/{organisation_id}"): Expect(None, EVERYONE,
        public=True, params=P_ORG),
    ("POST", "/v1/registrations/verify-email"): Expect(None, EVERYONE, 404, public=True,
        body=lambda t, w: {"token": "vf_not-a-token"}),
    ("POST", "/v1/registrations/resend-verification"): Expect(None, EVERYONE, 202, public=True,
        body=lambda t, w: {"username": unique("nobody.")}),
    # The sign-in's second step and passkey sign-in: refused alike for every caller.
    ("POST", "/v1/auth/second-factor"): Expect(None, EVERYONE, 401, public=True,
        body=lambda t, w: {"ticket": "t1.not-a-ticket", "code": "123456"}),
    ("POST", "/v1/auth/passkey/options"): Expect(None, EVERYONE, public=True,
        body=lambda t, w: {}),
    ("POST", "/v1/auth/passkey"): Expect(None, EVERYONE, 401, public=True,
        body=lambda t, w: {"credential": _PASSKEY_ANSWER}),
    ("GET", "/healthz"): Expect(None, EVERYONE, public=True),
    ("GET", "/readyz"): Expect(None, EVERYONE, public=True),
    # --- the signed-in user's own account ---
    ("GET", "/v1/me"): Expect(None, SIGNED_IN),
    ("PUT", "/v1/me/profile"): Expect(None, SIGNED_IN,
        body=lambda t, w: {"first_name": "Jean", "last_name": "Dupont",
                           "phone": "+33 6 12 34 56 78", "address_line": "1 rue",
                           "postal_code": "83000", "city": "Toulon", "birth_date": "1984-05-17"}),
    # --- the signed-in user's own second factors: nobody else's can be named ---
    ("GET", "/v1/me/second-factors"): Expect(None, SIGNED_IN),
    # Not the shared ops admin either: whether it holds an app when the matrix runs depends on
    # the tests before (the fuzzer signs in as it and may remove its app), so its answers here
    # (409 totp_present with an app, 201 without; recovery codes 200 with, 409 without) are
    # tests/identity/test_second_factor.py's to check.
    ("POST", "/v1/me/second-factors/totp"): Expect(None, SIGNED_IN, 201,
        skip=frozenset({OPS})),
    ("POST", "/v1/me/second-factors/totp/confirm"): Expect(None, SIGNED_IN, 409,
        body=lambda t, w: {"code": "000000"}),
    # Not the shared ops admin: removing its app would end the other tests' operator sessions
    # (tests/identity/test_second_factor.py removes factors).
    ("DELETE", "/v1/me/second-factors/totp"): Expect(None, SIGNED_IN, 204,
        skip=frozenset({OPS})),
    ("POST", "/v1/me/second-factors/recovery-codes"): Expect(None, SIGNED_IN, 409,
        skip=frozenset({OPS})),
    ("POST", "/v1/me/passkeys/options"): Expect(None, SIGNED_IN),
    ("POST", "/v1/me/passkeys"): Expect(None, SIGNED_IN, 409,
        body=lambda t, w: {"credential": _PASSKEY_ANSWER, "name": "Clé"}),
    ("DELETE", "/v1/me/passkeys/{passkey_id}"): Expect(None, SIGNED_IN, 404,
        params={"passkey_id": "=8c1d6a52-3f1e-4e0b-9a7c-2d4f6b8e0a1c"}),
    # --- organisations and accounts (identity); the path names association a or b ---
    ("GET", "/v1/organisations"): Expect(None, SIGNED_IN),
    ("POST", "/v1/organisations"): Expect(None, (OPS,), 201,
        body=lambda t, w: {"kind": "association", "name": unique("Asso "), "code": unique("Z")}),
    ("GET", "/v1/organisations/{organisation_id}"): Expect(
        # A pending user of the organisation may read it (identity's rule).
        ASSOC, ("association_admin", "member", "plain", OPS, SA), params=P_ORG),
    ("GET", "/v1/organisations/{organisation_id}/members"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ORG),
    ("GET", "/v1/organisations/{organisation_id}/accounts"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ORG, query=lambda t, w: {"last_name": "Securite"}),
    ("GET", "/v1/organisations/{organisation_id}/accounts/to-validate"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ORG),
    ("POST", "/v1/organisations/{organisation_id}/accounts"): Expect(
        ASSOC, ASSOC_ADMINS, 201, params=P_ORG, body=_user),
    # The path names the member's own account: they may read it.
    ("GET", "/v1/accounts/{user_id}"): Expect(ASSOC, (*ASSOC_ADMINS, "member"), params=P_USER),
    ("POST", "/v1/accounts/{user_id}/validate"): Expect(
        ASSOC, ASSOC_ADMINS, params={"user_id": "id:candidate"}),
    ("PUT", "/v1/accounts/{user_id}/email"): Expect(
        ASSOC, ASSOC_ADMINS, params={"user_id": "id:no_email_user"},
        body=lambda t, w: {"email": "other@security.example.com"}),
    ("POST", "/v1/accounts/{user_id}/password-reset"): Expect(
        ASSOC, ASSOC_ADMINS, 202, params=P_USER),
    # The association admin signed in with a password alone: resetting needs a second factor.
    ("POST", "/v1/accounts/{user_id}/second-factors/reset"): Expect(
        ASSOC, (OPS,), 204, params=P_USER),
    ("PUT", "/v1/organisations/{organisation_id}/second-factor-policy"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ORG, body=lambda t, w: {"required": False}),
    ("POST", "/v1/accounts/{user_id}/roles"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_USER,
        body=lambda t, w: {"organisation_id": t.orgs[ASSOC], "role": "member"}),
    ("DELETE", "/v1/accounts/{user_id}/roles/{organisation_id}/{role}"): Expect(
        ASSOC, ASSOC_ADMINS, params={**P_USER, **P_ORG, "role": "=association_admin"}),
    ("GET", "/v1/accounts/{user_id}/audit"): Expect(ASSOC, ASSOC_ADMINS, params=P_USER),
    ("POST", "/v1/operator/username-recovery"): Expect(None, (OPS, SA), 202,
        body=lambda t, w: {"email": "nobody@security.example.com",
                           "verification_reference": "ticket 1, ID card checked"}),
    ("POST", "/v1/operator/signing-keys/rotate"): Expect(None, (OPS,)),
    # --- client groups: only the provider's business account manager ---
    ("GET", "/v1/providers/{provider_id}/relationships"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_PROVIDER),
    ("GET", "/v1/providers/{provider_id}/available-clients"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_PROVIDER),
    ("GET", "/v1/providers/{provider_id}/groups"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_PROVIDER),
    ("POST", "/v1/providers/{provider_id}/groups"): Expect(
        PROVIDER, ("business_account_manager",), 201, outsider=403, params=P_PROVIDER,
        body=lambda t, w: {"name": unique("Nouveau "), "client_ids": [t.ids["free_client"]]}),
    ("GET", "/v1/providers/{provider_id}/groups/{group_id}"): Expect(
        PROVIDER, ("business_account_manager",), denied=404, operator=404, params=P_GROUP),
    ("GET", "/v1/providers/{provider_id}/groups/{group_id}/clients"): Expect(
        PROVIDER, ("business_account_manager",), denied=404, operator=404, params=P_GROUP),
    ("POST", "/v1/providers/{provider_id}/groups/{group_id}/access-summary"): Expect(
        PROVIDER, ("business_account_manager",), denied=404, operator=404, params=P_GROUP,
        body=lambda t, w: {"name": unique("Renommé ")}),
    # A rename alone moves no access: 200 (a change of clients or employees answers 202).
    ("POST", "/v1/providers/{provider_id}/groups/{group_id}/changes"): Expect(
        PROVIDER, ("business_account_manager",), denied=404, operator=404, params=P_GROUP,
        body=lambda t, w: {"name": unique("Renommé ")},
        query=lambda t, w: {"confirmation": "CONFIRMER"}),
    ("DELETE", "/v1/providers/{provider_id}/groups/{group_id}"): Expect(
        PROVIDER, ("business_account_manager",), 202, denied=404, operator=404,
        params={**P_PROVIDER, "group_id": "id:doomed_group"},
        query=lambda t, w: {"confirmation": "SUPPRIMER"}),
    ("GET", "/v1/providers/{provider_id}/employees"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_PROVIDER),
    ("POST", "/v1/providers/{provider_id}/employees/assignments"): Expect(
        PROVIDER, ("business_account_manager",), 202, denied=404, operator=404, params=P_PROVIDER,
        body=lambda t, w: {"group_id": t.ids["group"], "role": "read_only",
                           "employee_ids": [t.actors["read_only"].user_id]},
        query=lambda t, w: {"confirmation": "CONFIRMER"}),
    ("GET", "/v1/providers/{provider_id}/process-requests"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_PROVIDER),
    ("GET", "/v1/providers/{provider_id}/process-requests/{process_request_id}"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_REQUEST),
    ("GET", "/v1/providers/{provider_id}/process-requests/{process_request_id}/failures"): Expect(
        PROVIDER, ("business_account_manager",), outsider=403, params=P_REQUEST),
    ("POST", "/v1/providers/{provider_id}/process-requests/{process_request_id}/retry"): Expect(
        PROVIDER, ("business_account_manager",), 202, outsider=403, params=P_REQUEST),
    # --- support: set-up by the ops admin, read by agents ---
    ("POST", "/v1/support/calendars"): Expect(None, (OPS,), 201,
        body=lambda t, w: {"name": unique("Cal "), "time_zone": "Europe/Paris",
                           "weekly_hours": ["09:00-17:00"] * 5 + ["", ""]}),
    ("GET", "/v1/support/calendars"): Expect(None, (OPS, SA)),
    ("PUT", "/v1/support/calendars/{calendar_id}"): Expect(
        None, (OPS,), params={"calendar_id": "shared:calendar"},
        body=lambda t, w: {"time_zone": "Europe/Paris",
                           "weekly_hours": ["09:00-17:00"] * 5 + ["", ""]}),
    ("GET", "/v1/support/holiday-categories"): Expect(None, (OPS, SA),
        query=lambda t, w: {"country": "BR"}),
    ("POST", "/v1/support/plans"): Expect(None, (OPS,), 201,
        body=lambda t, w: {"code": unique("PL").upper(), "name": "Plan",
                           "calendar_id": w.shared["calendar"],
                           "targets": [{"priority": p, "first_response_minutes": 60,
                                        "next_response_minutes": 60, "resolution_minutes": 600}
                                       for p in ("low", "normal", "high", "urgent")]}),
    ("GET", "/v1/support/plans"): Expect(None, (OPS, SA)),
    ("PUT", "/v1/support/contracts/{organisation_id}"): Expect(
        ERP, (OPS,), outsider=403, params={"organisation_id": "org:erp"},
        body=lambda t, w: {"plan_id": w.shared["plan"]}),
    ("GET", "/v1/support/contracts/{organisation_id}"): Expect(
        ERP, (OPS, SA, "customer_user"), params={"organisation_id": "org:erp"}),
    ("GET", "/v1/support/contracts"): Expect(None, (OPS, SA)),
    ("GET", "/v1/support/categories"): Expect(None, SIGNED_IN),
    ("POST", "/v1/support/categories"): Expect(None, (OPS,), 201,
        body=lambda t, w: {"code": unique("CAT").upper(), "name": "Cat", "audience": "customer"}),
    ("PUT", "/v1/support/categories/{category_id}"): Expect(
        None, (OPS,), params={"category_id": "shared:category"},
        body=lambda t, w: {"name": "Catégorie renommée",
                           "entries": [{"question": "Comment ?", "answer": "Ainsi."}]}),
    ("GET", "/v1/support/categories/{category_id}"): Expect(
        None, SIGNED_IN, params={"category_id": "shared:category"}),
    ("POST", "/v1/support/views/{view_id}/deflection"): Expect(
        ERP, ("customer_user",), 204, denied=404, operator=404, params={"view_id": "id:view"}),
    ("POST", "/v1/support/tickets"): Expect(None, ("customer_user",), 201, body=_ticket),
    ("POST", "/v1/support/partner-messages"): Expect(None, ("partner_manager",), 201,
        body=lambda t, w: {"category_id": w.shared["partner_category"], "subject": "Question",
                           "body": "Bonjour"}),
    ("GET", "/v1/support/tickets"): Expect(None, SIGNED_IN),
    ("GET", "/v1/support/queue"): Expect(None, (OPS, SA)),
    ("GET", "/v1/support/tickets/{ticket_id}"): Expect(
        ERP, ("customer_user", OPS, SA), params=P_TICKET),
    ("POST", "/v1/support/tickets/{ticket_id}/messages"): Expect(
        ERP, ("customer_user", OPS, SA), 201, params=P_TICKET,
        body=lambda t, w: {"body": "Une précision."}),
    ("POST", "/v1/support/tickets/{ticket_id}/status"): Expect(
        ERP, (SA, OPS), params=P_TICKET, body=lambda t, w: {"status": "in_progress"}),
    ("POST", "/v1/support/tickets/{ticket_id}/priority"): Expect(
        ERP, (SA, OPS), outsider=403, params=P_TICKET, body=lambda t, w: {"priority": "high"}),
    ("POST", "/v1/support/tickets/{ticket_id}/kind"): Expect(
        ERP, (SA, OPS), outsider=403, params=P_TICKET, body=lambda t, w: {"kind": "consulting"}),
    ("POST", "/v1/support/tickets/{ticket_id}/consulting-time"): Expect(
        ERP, (SA, OPS), 201, outsider=403, params=P_TICKET, body=lambda t, w: {"minutes": 15}),
    ("POST", "/v1/support/tickets/{ticket_id}/attachments"): Expect(
        ERP, ("customer_user", OPS, SA), 201, params=P_TICKET,
        query=lambda t, w: {"filename": "capture.txt"}, content=(b"capture", "text/plain")),
    ("GET", "/v1/support/attachments/{attachment_id}"): Expect(
        ERP, ("customer_user", OPS, SA), params={"attachment_id": "id:attachment"}),
    ("GET", "/v1/support/reports/sla"): Expect(None, (SA, OPS),
        query=lambda t, w: {"start": _instant(-30), "end": _instant(1)}),
    # --- banner program: the program team (operator staff) and the workshop ---
    ("GET", "/v1/banner-programs"): Expect(None, TEAM),
    ("POST", "/v1/banner-programs"): Expect(None, TEAM, 201,
        body=lambda t, w: {"code": unique("PRG").upper(), "name": "Programme"}),
    ("PUT", "/v1/banner-programs/{program_id}/time-zone"): Expect(
        None, TEAM, params={"program_id": "shared:program"},
        body=lambda t, w: {"time_zone": "Europe/Paris"}),
    ("POST", "/v1/banner-programs/{program_id}/options"): Expect(
        None, TEAM, 201, params={"program_id": "shared:program"},
        body=lambda t, w: {"code": unique("OPT").upper(), "name": "Option", "benefit": "Plus"}),
    ("PUT", "/v1/banner-programs/{program_id}/options/{option_id}"): Expect(
        None, TEAM, params={"program_id": "shared:program", "option_id": "shared:opt_c"},
        body=lambda t, w: {"name": "opt_c", "benefit": "mieux",
                           "translations": [{"locale": "pt-BR", "name": "opção c",
                                             "benefit": "melhor"}]}),
    ("GET", "/v1/training-courses"): Expect(None, (*TEAM, "workshop_owner")),
    ("POST", "/v1/training-courses"): Expect(None, TEAM, 201,
        body=lambda t, w: {"code": unique("CRS").upper(), "title": "Cours",
                           "starts_on": _days(90), "location": "Paris", "capacity": 5}),
    ("GET", "/v1/workshops"): Expect(None, TEAM),
    ("POST", "/v1/workshops/{workshop_id}/membership"): Expect(
        WORKSHOP, TEAM, 201, outsider=403, params={"workshop_id": "org:new_workshop"},
        body=_membership),
    ("GET", "/v1/workshops/{workshop_id}"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params=P_WORKSHOP),
    ("PUT", "/v1/workshops/{workshop_id}/contacts"): Expect(
        WORKSHOP, TEAM, params=P_WORKSHOP, body=_contacts),
    ("PUT", "/v1/workshops/{workshop_id}/renewal-date"): Expect(
        WORKSHOP, TEAM, params=P_WORKSHOP, body=lambda t, w: {"renewal_date": _days(210)}),
    ("PUT", "/v1/workshops/{workshop_id}/time-zone"): Expect(
        WORKSHOP, TEAM, params=P_WORKSHOP, body=lambda t, w: {"time_zone": "Europe/Paris"}),
    # The letter of a renewal 100 days away has not left: the team's answer is 409.
    ("POST", "/v1/workshops/{workshop_id}/anniversary-letter/resend"): Expect(
        WORKSHOP, TEAM, 409, params=P_WORKSHOP, body=lambda t, w: {"reason": "Perdue"}),
    ("GET", "/v1/workshops/{workshop_id}/option-change-requests"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params=P_WORKSHOP),
    ("POST", "/v1/workshops/{workshop_id}/option-change-requests"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), 201, params=P_WORKSHOP,
        body=lambda t, w: {"option_id": w.shared["opt_c"], "change": "add"}),
    ("POST", "/v1/workshops/{workshop_id}/option-change-requests/{request_id}/decision"): Expect(
        WORKSHOP, TEAM, params={**P_WORKSHOP, "request_id": "id:option_request"},
        body=lambda t, w: {"approve": True}),
    ("GET", "/v1/workshops/{workshop_id}/technicians"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params=P_WORKSHOP),
    ("POST", "/v1/workshops/{workshop_id}/technicians"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), 201, params=P_WORKSHOP,
        body=lambda t, w: {"first_name": "Léa", "last_name": "Nouvelle"}),
    ("GET", "/v1/workshops/{workshop_id}/training-registrations"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params=P_WORKSHOP),
    ("POST", "/v1/workshops/{workshop_id}/training-registrations"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), 201, params=P_WORKSHOP,
        body=lambda t, w: {"course_id": w.shared["course"],
                           "technician_id": t.ids["technician2"]}),
    ("PUT", "/v1/workshops/{workshop_id}/training-registrations/{registration_id}"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM),
        params={**P_WORKSHOP, "registration_id": "id:course_registration"},
        body=lambda t, w: {"status": "cancelled"}),
    ("GET", "/v1/workshops/{workshop_id}/warranty-claims"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params=P_WORKSHOP),
    ("POST", "/v1/workshops/{workshop_id}/warranty-claims"): Expect(
        WORKSHOP, ("workshop_owner",), 201, params=P_WORKSHOP,
        body=lambda t, w: {"vehicle_vin": "VF1RFB00X12345678", "repair_order": unique("OR-"),
                           "repair_date": _days(-2), "labour_minutes": 30,
                           "amount_cents": 4500, "description": "Réparation"}),
    ("GET", "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}"): Expect(
        WORKSHOP, ("workshop_owner", *TEAM), params={**P_WORKSHOP, "claim_id": "id:claim"}),
    ("POST", "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}/transitions"): Expect(
        WORKSHOP, TEAM, params={**P_WORKSHOP, "claim_id": "id:claim"},
        body=lambda t, w: {"to_status": "under_review"}),
    # Last of the workshop's: it ends tenant a's membership.
    ("POST", "/v1/workshops/{workshop_id}/membership/end"): Expect(
        WORKSHOP, TEAM, params=P_WORKSHOP, body=lambda t, w: {"reason": "Fermeture"}),
    # --- association: its admins (and the ops admin); three public calls ---
    ("GET", "/v1/associations/{association_id}/settings"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("PUT", "/v1/associations/{association_id}/time-zone"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC, body=lambda t, w: {"time_zone": "Europe/Paris"}),
    ("GET", "/v1/associations/{association_id}/members"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("POST", "/v1/associations/{association_id}/members"): Expect(
        ASSOC, ASSOC_ADMINS, 201, params=P_ASSOC,
        body=lambda t, w: {"first_name": "Nouveau", "last_name": unique("Membre")}),
    ("POST", "/v1/associations/{association_id}/members/{member_id}/fees"): Expect(
        ASSOC, ASSOC_ADMINS, 201, params={**P_ASSOC, "member_id": "id:member"},
        body=lambda t, w: {"year": date.today().year, "amount_cents": 3500}),
    ("GET", "/v1/associations/{association_id}/fee-status"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC,
        query=lambda t, w: {"user_id": t.actors["member"].user_id}),
    ("GET", "/v1/associations/{association_id}/trainings"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("POST", "/v1/associations/{association_id}/trainings"): Expect(
        ASSOC, ASSOC_ADMINS, 201, params=P_ASSOC,
        body=lambda t, w: {"training_type": "SST", "title": "SST", "start_time": _instant(45),
                           "location": "Hyères", "capacity": 10}),
    ("GET", "/v1/associations/{association_id}/public-trainings"): Expect(
        ASSOC, EVERYONE, public=True, params=P_ASSOC),
    ("POST", "/v1/associations/{association_id}/trainings/{training_id}/registrations"): Expect(
        ASSOC, EVERYONE, 201, public=True, params={**P_ASSOC, "training_id": "id:training"},
        body=lambda t, w: _trainee()),
    ("GET", "/v1/associations/{association_id}/trainings/{training_id}/trainees"): Expect(
        ASSOC, ASSOC_ADMINS, params={**P_ASSOC, "training_id": "id:training"}),
    ("POST", "/v1/associations/{association_id}/registrations/{registration_id}/validation"):
        Expect(ASSOC, ASSOC_ADMINS, params={**P_ASSOC, "registration_id": "id:registration"}),
    ("PUT", "/v1/associations/{association_id}/registrations/{registration_id}/email"): Expect(
        ASSOC, ASSOC_ADMINS, params={**P_ASSOC, "registration_id": "id:registration"},
        body=lambda t, w: {"email": "corrigee@security.example.com"}),
    ("POST", "/v1/associations/{association_id}/dps-requests"): Expect(
        ASSOC, EVERYONE, 201, public=True, params=P_ASSOC, body=lambda t, w: _coverage()),
    ("GET", "/v1/associations/{association_id}/dps-requests"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("GET", "/v1/associations/{association_id}/client-records"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("GET", "/v1/associations/{association_id}/client-records/{record_id}"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_RECORD),
    ("GET", "/v1/associations/{association_id}/duplicates"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    ("GET", "/v1/associations/{association_id}/client-records/{record_id}/duplicates"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_RECORD),
    ("GET", "/v1/associations/{association_id}/client-records/{record_id}/merge-preview"):
        Expect(ASSOC, ASSOC_ADMINS, params={**P_ASSOC, "record_id": "id:registration2_record"},
               query=lambda t, w: {"target_id": t.ids["registration_record"]}),
    ("POST", "/v1/associations/{association_id}/client-records/{record_id}/merge"): Expect(
        ASSOC, ASSOC_ADMINS, params={**P_ASSOC, "record_id": "id:registration2_record"},
        body=lambda t, w: {"target_id": t.ids["registration_record"]}),
    # After the merge: the emptied record goes.
    ("DELETE", "/v1/associations/{association_id}/client-records/{record_id}"): Expect(
        ASSOC, ASSOC_ADMINS, 204, params={**P_ASSOC, "record_id": "id:registration2_record"},
        query=lambda t, w: {"confirmation": "SUPPRIMER"}),
    ("GET", "/v1/associations/{association_id}/client-record-audit"): Expect(
        ASSOC, ASSOC_ADMINS, params=P_ASSOC),
    # --- a delivery partner's back office: its manager; operators read. Never a 403. ---
    ("GET", "/v1/partners/{store_id}"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("PUT", "/v1/partners/{store_id}/settings"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_STORE,
        body=lambda t, w: {"operations_email": "ops2@security.example.com"}),
    ("GET", "/v1/partners/{store_id}/orders/in-progress"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("GET", "/v1/partners/{store_id}/orders/history"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("GET", "/v1/partners/{store_id}/orders/{order_id}"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_ORDER),
    ("POST", "/v1/partners/{store_id}/orders/{order_id}/courier-contact"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_ORDER,
        body=lambda t, w: {"message": "Prête"}),
    ("POST", "/v1/partners/{store_id}/orders/{order_id}/out-of-stock"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_ORDER,
        body=lambda t, w: {"item_id": t.ids["order_item"]}),
    ("POST", "/v1/partners/{store_id}/orders/{order_id}/out-of-stock/answer"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_ORDER,
        body=lambda t, w: {"customer_accepted": False}),
    ("POST", "/v1/partners/{store_id}/orders/{order_id}/courier-report"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404,
        params={**P_STORE, "order_id": "id:delivered_order"},
        body=lambda t, w: {"reason": "late"}),
    ("GET", "/v1/partners/{store_id}/products"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("PUT", "/v1/partners/{store_id}/products/{product_id}/price"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_PRODUCT,
        body=lambda t, w: {"price_cents": 1190}),
    ("POST", "/v1/partners/{store_id}/products/{product_id}/deactivate"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_PRODUCT,
        body=lambda t, w: {"reason": "rupture"}),
    ("POST", "/v1/partners/{store_id}/products/{product_id}/activate"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_PRODUCT),
    ("POST", "/v1/partners/{store_id}/content-changes"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_STORE,
        body=lambda t, w: {"product_id": t.ids["product"], "proposed_description": "Tomate"}),
    ("GET", "/v1/partners/{store_id}/content-changes"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("POST", "/v1/partners/{store_id}/check-ins"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_STORE),
    ("GET", "/v1/partners/{store_id}/check-ins"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("POST", "/v1/partners/{store_id}/promotions"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_STORE,
        body=lambda t, w: {"name": "Livraison offerte", "kind": "free_delivery"}),
    ("GET", "/v1/partners/{store_id}/promotions"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("PUT", "/v1/partners/{store_id}/promotions/{promotion_id}/configuration"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_PROMOTION,
        body=lambda t, w: {"percent_off": 10, "starts_at": _instant(1), "ends_at": _instant(8)}),
    ("POST", "/v1/partners/{store_id}/promotions/{promotion_id}/activate"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_PROMOTION),
    ("GET", "/v1/partners/{store_id}/promotions/{promotion_id}"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_PROMOTION),
    ("POST", "/v1/partners/{store_id}/promotions/{promotion_id}/problems"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_PROMOTION,
        body=lambda t, w: {"description": "Ne s'applique pas"}),
    ("POST", "/v1/partners/{store_id}/messages"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_STORE,
        body=lambda t, w: {"category": "other", "subject": "Bonjour", "body": "Question"}),
    ("GET", "/v1/partners/{store_id}/messages"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("GET", "/v1/partners/{store_id}/bank-detail-changes"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_STORE),
    ("PUT", "/v1/partners/{store_id}/bank-detail-changes/{change_id}/proof"): Expect(
        STORE, ("partner_manager",), denied=404, operator=404, params=P_BANK,
        query=lambda t, w: {"filename": "rib.pdf"}, content=(PDF, "application/pdf")),
    ("GET", "/v1/partners/{store_id}/bank-detail-changes/{change_id}/proof"): Expect(
        STORE, ("partner_manager", *TEAM), denied=404, params=P_BANK),
    # --- the operators' side of partners ---
    ("POST", "/v1/operator/partners/stores"): Expect(
        None, (OPS,), 201, body=lambda t, w: {"store_id": t.orgs["new_store"],
                                              "operations_email": "ops@security.example.com"}),
    ("POST", "/v1/operator/partners/stores/{store_id}/products"): Expect(
        STORE, TEAM, 201, outsider=403, params=P_STORE,
        body=lambda t, w: {"name": unique("Produit "), "price_cents": 500}),
    ("GET", "/v1/operator/partners/check-ins/missing"): Expect(None, TEAM),
    ("GET", "/v1/operator/partners/bank-detail-changes"): Expect(None, TEAM),
    ("GET", "/v1/operator/partners/escalations"): Expect(None, TEAM),
    ("GET", "/v1/operator/partners/bank-detail-changes/{change_id}/proof"): Expect(
        STORE, TEAM, outsider=403, params={"change_id": "id:bank_change"}),
    ("POST", "/v1/operator/partners/bank-detail-changes/{change_id}/approve"): Expect(
        STORE, TEAM, outsider=403, params={"change_id": "id:bank_change"}),
    ("POST", "/v1/operator/partners/bank-detail-changes/{change_id}/reject"): Expect(
        STORE, TEAM, outsider=403, params={"change_id": "id:bank_change2"},
        body=lambda t, w: {"reason": "Illisible"}),
    ("POST", "/v1/operator/partners/orders/{order_id}/cancel"): Expect(
        # The order whose stock-out the partner reported, and the customer refused.
        STORE, TEAM, outsider=403, params={"order_id": "id:order"},
        body=lambda t, w: {"note": "Annulée"}),
    ("POST", "/v1/operator/partners/orders/{order_id}/refund"): Expect(
        STORE, TEAM, outsider=403, params={"order_id": "id:refund_order"},
        body=lambda t, w: {"reason": "Erreur", "funded_by": "platform"}),
    ("POST", "/v1/operator/partners/content-changes/{content_change_id}/approve"): Expect(
        STORE, TEAM, outsider=403, params={"content_change_id": "id:content_change"}),
    ("POST", "/v1/operator/partners/content-changes/{content_change_id}/reject"): Expect(
        STORE, TEAM, outsider=403, params={"content_change_id": "id:content_change2"},
        body=lambda t, w: {"reason": "Non"}),
    # After the operator approved the open one: a new bank-detail change may start.
    ("POST", "/v1/partners/{store_id}/bank-detail-changes"): Expect(
        STORE, ("partner_manager",), 201, denied=404, operator=404, params=P_STORE,
        body=lambda t, w: {"iban": "FR76 3000 6000 0112 3456 7890 189", "bic": "AGRIFRPP",
                           "account_holder": "Nouveau titulaire"}),
}
# fmt: on

READ_METHODS = {"GET"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# FastAPI's own pages (off when PUBLIC_DOCS is false); they serve no data.
DOCUMENTATION = {"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}


def gateway_routes() -> set[tuple[str, str]]:
    """Every (method, path) the gateway serves, read from its own route table."""
    app: FastAPI = create_app(GatewaySettings(identity_addr="127.0.0.1:1"))
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI ≥ 0.16x keeps included routers as one node
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):  # as the spec spells it: {id}, not {id:uuid}
                path = prefix + route.path_format
                found.update((method, path) for method in route.methods or ())
            elif prefix + getattr(route, "path", "") in DOCUMENTATION:
                continue
            else:  # any other endpoint (a bare Starlette route, a mount): it needs an entry too
                methods = getattr(route, "methods", None) or {"*"}
                found.update((method, prefix + getattr(route, "path", "?")) for method in methods)

    walk(list(app.routes), "")
    return found


def test_every_route_has_an_expectation(record_property: Callable[[str, Any], None]) -> None:
    """A new route fails here until TABLE says who may call it (and a removed one, too)."""
    served = gateway_routes()
    record_property(
        "reliability",
        {
            "kind": "matrix",
            "name": "route table",
            "tried": len(served),
            "lost": len(served ^ set(TABLE)),
        },
    )
    assert served - set(TABLE) == set(), "routes without an expectation in TABLE"
    assert set(TABLE) - served == set(), "expectations for routes the gateway does not serve"


# --- running the cells -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    role: str
    # "own" (tenant a), "foreign" (tenant b's ids), "missing" (ids that do not exist),
    # "crossed" (tenant a's organisation, tenant b's resource below it: the rightful caller)
    side: str
    expected: int | None  # None: only checked against its twin (missing) and for no 5xx


@dataclass
class Answer:
    status: int
    problem: str | None
    text: str


def _resolve(spec: str, tenant: Tenant, world: World, side: str) -> str:
    """A path value: `org:<key>`, `id:<key>`, `user:<actor>`, `shared:<key>` or `=<literal>`;
    for the missing side every id is one that exists nowhere; for the crossed side the
    organisation is tenant a's and the resource ids below it are tenant b's."""
    source, _, key = spec.partition(":") if not spec.startswith("=") else ("=", "", spec[1:])
    if source == "=":
        return key
    if side == "missing" and source != "shared":
        return str(uuid.uuid4())
    if side == "crossed" and source in ("id", "user"):
        tenant = world.b  # the caller's own organisation in the path, the other one's resource
    if source == "org":
        return tenant.orgs[key]
    if source == "id":
        return tenant.ids[key]
    if source == "user":
        return tenant.actors[key].user_id
    return world.shared[key]


def expected_status(expect: Expect, role: str, side: str) -> int | None:
    if expect.public:
        return expect.status if side != "missing" else None
    if role == "anonymous":
        return 401
    if role in expect.special:
        return expect.special[role]
    operator = role in OPERATORS
    if side == "missing":
        return None
    if side == "crossed":
        return 404  # another tenant's resource under one's own organisation does not exist
    if role in expect.ok and (operator or side == "own" or expect.tenant is None):
        return expect.status
    if operator:
        return expect.operator
    if expect.tenant is None:
        return expect.denied
    if side == "own" and ROLE_ORG[role] == expect.tenant:
        return expect.denied
    return expect.outsider


def cells_for(method: str, expect: Expect) -> list[Cell]:
    sides = ["own", "foreign", "missing"] if expect.tenant is not None else ["own"]
    cells = []
    for role in EVERYONE:
        if role in expect.skip:
            continue
        for side in sides:
            if side == "missing" and role in OPERATORS and not expect.public:
                # Operators see every tenant: their foreign cell is a success, nothing to hide.
                continue
            related = role in ("plain", "anonymous") or ROLE_ORG[role] == expect.tenant
            if side != "own" and not related and role not in OPERATORS:
                continue  # a caller of another kind: tenant a's ids are already foreign to it
            if expect.public and role not in PUBLIC_CALLERS:
                continue  # a public route answers whoever calls: a few callers show it
            if (
                method not in READ_METHODS
                and role in OPERATORS
                and side == "foreign"
                and (role in expect.ok)
            ):
                continue  # one mutating success is enough (the own cell, run last)
            cells.append(Cell(role, side, expected_status(expect, role, side)))
        if role in expect.ok and _crossable(expect) and not expect.public:
            cells.append(Cell(role, "crossed", expected_status(expect, role, "crossed")))
    return cells


def _crossable(expect: Expect) -> bool:
    """The path names an organisation and, below it, resources of that organisation."""
    specs = list(expect.params.values())
    return (
        bool(specs)
        and specs[0].startswith("org:")
        and any(spec.startswith(("id:", "user:")) for spec in specs[1:])
    )


async def _send(
    http: httpx.AsyncClient, world: World, method: str, path: str, expect: Expect, cell: Cell
) -> Answer:
    tenant = world.b if cell.side == "foreign" else world.a
    url = path
    for name, spec in expect.params.items():
        url = url.replace("{" + name + "}", _resolve(spec, tenant, world, cell.side))
    actor: Actor | None = None
    if cell.role in OPERATORS:
        actor = world.operators[cell.role]
    elif cell.role != "anonymous":
        actor = world.a.actors[cell.role]
    headers = dict(actor.headers) if actor else {}
    kwargs: dict[str, Any] = {}
    if expect.body is not None:
        kwargs["json"] = expect.body(tenant, world)
    if expect.content is not None:
        kwargs["content"] = expect.content[0]
        headers["content-type"] = expect.content[1]
    if expect.query is not None:
        kwargs["params"] = expect.query(tenant, world)
    response = await http.request(method, url, headers=headers, **kwargs)
    problem = None
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        # Type, title, detail and field errors; ids (which differ by construction) masked.
        problem = _UUID.sub(
            "<id>", json.dumps([body.get(k) for k in ("type", "title", "detail", "errors")])
        )
    return Answer(response.status_code, problem, response.text[:300])


def _is_mutating_success(method: str, expect: Expect, cell: Cell) -> bool:
    return (
        method not in READ_METHODS
        and cell.expected is not None
        and cell.expected == expect.status
        and (expect.public is False and cell.role in expect.ok)
    )


ROUTES = list(TABLE)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_isolation(
    world: World,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    record_property: Callable[[str, Any], None],
) -> None:
    """Every caller gets the table's answer; foreign ids answer exactly like missing ones."""
    expect = TABLE[(method, path)]
    cells = cells_for(method, expect)
    refusals = [c for c in cells if not _is_mutating_success(method, expect, c)]
    successes = [c for c in cells if _is_mutating_success(method, expect, c)]
    answers = dict(
        zip(
            refusals,
            await asyncio.gather(*(_send(http, world, method, path, expect, c) for c in refusals)),
            strict=True,
        )
    )
    # The refusals changed nothing; now the rightful caller acts, once.
    successes.sort(key=lambda c: expect.ok.index(c.role))
    for cell in successes[:1]:
        answers[cell] = await _send(http, world, method, path, expect, cell)
    wrong = []
    for cell, answer in answers.items():
        if answer.status >= 500:
            wrong.append(f"{cell.role}/{cell.side}: {answer.status} (a server error) {answer.text}")
        elif cell.expected is not None and answer.status != cell.expected:
            wrong.append(
                f"{cell.role}/{cell.side}: expected {cell.expected}, got {answer.status} "
                f"{answer.text}"
            )
    for cell, answer in answers.items():
        if cell.side != "foreign" or cell.role in OPERATORS or expect.public:
            continue
        twin = answers.get(Cell(cell.role, "missing", None))
        if twin and (twin.status, twin.problem) != (answer.status, answer.problem):
            wrong.append(
                f"{cell.role}: foreign ids answer {answer.status} {answer.problem}, missing ids "
                f"{twin.status} {twin.problem}: existence leaks"
            )
    record_property(
        "reliability",
        {"kind": "matrix", "name": f"{method} {path}", "tried": len(answers), "lost": len(wrong)},
    )
    assert not wrong, "\n".join(wrong)
