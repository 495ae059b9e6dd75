"""Every limit the services enforce is the one the published schema states (issue 24, item 1).

The gateway cannot import the services (import contracts), so each keeps its constants; this
test reads both sides, the services' named constants and the schema of /openapi.json, and
fails when they differ. Whatever it cannot compare by name (a rule spread over code) the
schemathesis gate probes through the running stack: a value at the schema's limit must be
accepted, one past it refused (tests/e2e/test_fuzz_openapi.py, coverage phase).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pytest

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.uploads import ATTACHMENT_TYPES, BANK_PROOF_TYPES
from services.groups.domain import common as groups
from services.identity.domain import (
    accounts as identity_accounts,
    credentials as identity_credentials,
    organisations as identity_organisations,
)
from services.identity.domain.roles import ALL_ROLES
from services.membership.domain import banner as membership_banner, claims as membership_claims
from services.partners.domain import (
    bank_details as partners_bank,
    common as partners,
    promotions as partners_promotions,
)
from services.support.domain import common as support, tickets as support_tickets
from services.support.settings import DEFAULT_ATTACHMENT_TYPES


@functools.cache
def _schemas() -> dict[str, Any]:
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    loaded: dict[str, Any] = json.loads(json.dumps(document))["components"]["schemas"]
    return loaded


def _prop(schema: str, field: str) -> dict[str, Any]:
    prop: dict[str, Any] = _schemas()[schema]["properties"][field]
    for option in prop.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return {**prop, **option}
    return prop


@pytest.mark.parametrize(
    ("schema", "field", "limit"),
    [
        ("ProfileBody", "first_name", identity_accounts._PROFILE_LIMITS["first_name"]),
        ("ProfileBody", "last_name", identity_accounts._PROFILE_LIMITS["last_name"]),
        ("ProfileBody", "address_line", identity_accounts._PROFILE_LIMITS["address_line"]),
        ("ProfileBody", "city", identity_accounts._PROFILE_LIMITS["city"]),
        ("SelfRegistrationBody", "first_name", 100),  # identity's check_name default
        ("SelfRegistrationBody", "password", identity_credentials.PASSWORD_MAX),
        ("ResetPasswordBody", "new_password", identity_credentials.PASSWORD_MAX),
        ("UsernameRecoveryBody", "verification_reference", 200),
        ("RefreshBody", "refresh_token", 200),
        ("CreateGroupBody", "name", groups.NAME_MAX),
        ("AssignEmployeesBody", "employee_ids", groups.MAX_EMPLOYEES_PER_CALL),
        ("TicketBody", "title", support.TITLE_MAX),
        ("TicketBody", "description", support.TEXT_MAX),
        ("TicketBody", "example_record", support_tickets.EXAMPLE_MAX),
        ("ReplyBody", "body", support.TEXT_MAX),
        ("ProblemBody", "description", partners.TEXT_MAX),
        ("RejectBody", "reason", partners.NOTE_MAX),
        ("PromotionConfigBody", "product_ids", partners_promotions.MAX_PROMOTION_PRODUCTS),
        ("MembershipBody", "option_ids", membership_banner.MAX_OPTIONS),
    ],
)
def test_lengths_are_the_services(schema: str, field: str, limit: int) -> None:
    prop = _prop(schema, field)
    assert prop.get("maxLength", prop.get("maxItems")) == limit


@pytest.mark.parametrize(
    ("schema", "field", "low", "high"),
    [
        ("ProductBody", "price_cents", 0, partners.MAX_PRICE_CENTS),
        ("PriceBody", "price_cents", 0, partners.MAX_PRICE_CENTS),
        ("ContentChangeBody", "proposed_price_cents", 0, partners.MAX_PRICE_CENTS),
        ("PromotionConfigBody", "min_order_cents", 0, partners.MAX_PRICE_CENTS),
        ("PromotionConfigBody", "amount_off_cents", 1, partners.MAX_PRICE_CENTS),
        ("AnswerBody", "replacement_quantity", 1, partners.MAX_QUANTITY),
        ("ClaimBody", "labour_minutes", 1, 6000),
        ("ClaimBody", "amount_cents", 0, 10_000_000),
    ],
)
def test_ranges_are_the_services(schema: str, field: str, low: int, high: int) -> None:
    prop = _prop(schema, field)
    assert (prop["minimum"], prop["maximum"]) == (low, high)


def _accepts(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


@pytest.mark.parametrize(
    ("schema", "field", "service_pattern", "samples"),
    [
        (
            "SelfRegistrationBody",
            "username",
            identity_credentials.USERNAME_PATTERN.pattern,
            ["ab", "abc", "Dupont.Jean", "a" * 64, "a" * 65, "jean dupont", "jéan"],
        ),
        (
            "OrganisationBody",
            "code",
            identity_organisations._ORG_CODE.pattern,
            ["83", "SP-DUPONT", "a" * 32, "a" * 33, "a b", ""],
        ),
        (
            "BankDetailBody",
            "bic",
            partners_bank._BIC.pattern,
            ["AGRIFRPP", "AGRIFRPPXXX", "AGRIFRP", "AGRIFRPPX", "12RIFRPP"],
        ),
        (
            "ClaimBody",
            "vehicle_vin",
            membership_claims._VIN.pattern,
            ["VF1RFB00X12345678", "VF1RFB00I12345678", "VF1RFB00X1234567"],
        ),
        ("CategoryBody", "code", support.CODE_PATTERN.pattern, ["INVOICING", "a-b_c", "a b"]),
    ],
)
def test_patterns_accept_what_the_services_accept(
    schema: str, field: str, service_pattern: str, samples: list[str]
) -> None:
    pattern = _prop(schema, field)["pattern"]
    for sample in samples:
        assert _accepts(pattern, sample) == _accepts(service_pattern, sample), sample


def test_roles_are_identitys() -> None:
    assert set(_schemas()["RoleName"]["enum"]) == ALL_ROLES


def test_media_types_are_the_services() -> None:
    assert set(ATTACHMENT_TYPES) == set(DEFAULT_ATTACHMENT_TYPES.split(","))
    assert set(BANK_PROOF_TYPES) == set(partners_bank.PROOF_SIGNATURES)


def test_every_required_string_of_a_request_says_what_it_takes() -> None:
    """191 of 301 required strings had no minLength, format, pattern or enum, while the
    services refuse "": now each says what it takes."""
    bare = []
    for name, schema in _schemas().items():
        for field in schema.get("required", []):
            prop = _prop(name, field)
            if prop.get("type") != "string" or name.endswith(("Page", "Result")):
                continue
            if not {"minLength", "format", "pattern", "enum", "const"} & set(prop):
                bare.append(f"{name}.{field}")
    request_schemas = _request_schemas()
    assert sorted(b for b in bare if b.split(".")[0] in request_schemas) == []


def _request_schemas() -> set[str]:
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    schemas = document["components"]["schemas"]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    walk(schemas[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for item in document["paths"].values():
        for operation in item.values():
            walk(operation.get("requestBody", {}))
    return found
