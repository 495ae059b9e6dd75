"""The JSON shapes of the REST API, and their translation to and from identity's messages.

Request models check shape only (presence, type, UUID, date, size caps, no unknown fields); what a
value means (is this e-mail acceptable, is this password strong, is this role valid here) is
identity's rule and comes back as a 400 naming the field. Enums travel as lower-case strings,
timestamps as ISO 8601, and proto3's empty strings as null.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from enum import StrEnum
from typing import Any, Literal, cast

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.identity.v1 import identity_pb2
from pydantic import BaseModel, ConfigDict, Field

# Caps that bound what a client can make the gateway parse and forward; not business rules.
NAME_MAX = 200
SECRET_MAX = 1024
TOKEN_MAX = 4096
EMAIL_MAX = 320

EXAMPLE_USER_ID = "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"
EXAMPLE_ORG_ID = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"
_EXAMPLE_TIME = "2025-03-14T09:26:53Z"


class _Request(BaseModel):
    """Unknown fields are refused: a typo (`firstname`) must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _text(example: str, *, max_length: int = NAME_MAX, description: str | None = None) -> Any:
    return Field(max_length=max_length, examples=[example], description=description)


def _optional_text(example: str, *, max_length: int = NAME_MAX) -> Any:
    return Field(default=None, max_length=max_length, examples=[example])


def _none_if_empty(value: str) -> str | None:
    return value or None


def _time(value: Timestamp, present: bool) -> dt.datetime | None:
    return value.ToDatetime(tzinfo=dt.UTC) if present else None


# --- enums -----------------------------------------------------------------------------------


class OrganisationKind(StrEnum):
    """The kinds of tenant; tests check this list against identity's proto enum."""

    SERVICE_PROVIDER = "service_provider"
    CLIENT_BUSINESS = "client_business"
    ASSOCIATION = "association"
    DELIVERY_PARTNER = "delivery_partner"
    WORKSHOP = "workshop"
    ERP_CUSTOMER = "erp_customer"
    OPERATOR = "operator"

    def to_proto(self) -> identity_pb2.OrganisationKind.ValueType:
        return identity_pb2.OrganisationKind.Value(f"ORGANISATION_KIND_{self.name}")

    @classmethod
    def from_proto(cls, value: identity_pb2.OrganisationKind.ValueType) -> OrganisationKind:
        name = identity_pb2.OrganisationKind.Name(value)
        return cls[name.removeprefix("ORGANISATION_KIND_")]


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"

    @classmethod
    def from_proto(cls, value: identity_pb2.UserStatus.ValueType) -> UserStatus:
        return cls[identity_pb2.UserStatus.Name(value).removeprefix("USER_STATUS_")]


ROLE_DESCRIPTION = (
    "A role name: business_account_manager, program_account_manager, editor, read_only, "
    "association_admin, member, partner_manager, workshop_owner, customer_user, support_agent, "
    "ops_admin. Identity decides which roles fit which organisation."
)
ROLE_PATTERN = r"^[a-z][a-z_]{0,63}$"


# --- tokens ----------------------------------------------------------------------------------


class LoginBody(_Request):
    # Not a demo user: the fuzzer logs in with the documented example and a wrong password, and
    # five of those would lock a demo account for the browser tests sharing its stack.
    username: str = _text("jean.exemple", description="Case-insensitive.")
    password: str = _text("correct horse battery staple", max_length=SECRET_MAX)


class RefreshBody(_Request):
    refresh_token: str = _text("rt_6Qe3…", max_length=TOKEN_MAX)


class TokenPair(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjUtMDMifQ…"])
    refresh_token: str = Field(examples=["rt_6Qe3…"])
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="Access token lifetime in seconds.", examples=[900])
    refresh_expires_in: int = Field(
        description="Refresh token lifetime in seconds.", examples=[2592000]
    )

    @classmethod
    def from_proto(cls, tokens: identity_pb2.TokenPair) -> TokenPair:
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_type=tokens.token_type or "Bearer",
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
        )


class Jwks(BaseModel):
    """RFC 7517 key set; access tokens are EdDSA JWTs whose `kid` names one of these keys."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "kid": "2025-03",
                            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                            "use": "sig",
                            "alg": "EdDSA",
                        }
                    ]
                }
            ]
        },
    )

    keys: list[dict[str, Any]]

    @classmethod
    def from_json(cls, document: str) -> Jwks:
        return cls.model_validate(json.loads(document))


class SigningKey(BaseModel):
    kid: str = Field(examples=["2025-03"])


# --- users -----------------------------------------------------------------------------------


class ProfileBody(_Request):
    """The member's personal information (PUT: fields left out are cleared)."""

    first_name: str = _text("Jean")
    last_name: str = _text("Dupont")
    phone: str | None = _optional_text("+33 6 12 34 56 78", max_length=40)
    address_line: str | None = _optional_text("12 rue de la République")
    postal_code: str | None = _optional_text("83000", max_length=20)
    city: str | None = _optional_text("Toulon")
    birth_date: dt.date | None = Field(default=None, examples=["1984-05-17"])

    def to_proto(self) -> identity_pb2.Profile:
        return identity_pb2.Profile(
            first_name=self.first_name,
            last_name=self.last_name,
            phone=self.phone or "",
            address_line=self.address_line or "",
            postal_code=self.postal_code or "",
            city=self.city or "",
            birth_date=self.birth_date.isoformat() if self.birth_date else "",
        )


class Profile(BaseModel):
    first_name: str | None = Field(examples=["Jean"])
    last_name: str | None = Field(examples=["Dupont"])
    phone: str | None = Field(examples=["+33 6 12 34 56 78"])
    address_line: str | None = Field(examples=["12 rue de la République"])
    postal_code: str | None = Field(examples=["83000"])
    city: str | None = Field(examples=["Toulon"])
    birth_date: dt.date | None = Field(examples=["1984-05-17"])

    @classmethod
    def from_proto(cls, profile: identity_pb2.Profile) -> Profile:
        return cls(
            first_name=_none_if_empty(profile.first_name),
            last_name=_none_if_empty(profile.last_name),
            phone=_none_if_empty(profile.phone),
            address_line=_none_if_empty(profile.address_line),
            postal_code=_none_if_empty(profile.postal_code),
            city=_none_if_empty(profile.city),
            birth_date=dt.date.fromisoformat(profile.birth_date) if profile.birth_date else None,
        )


class Membership(BaseModel):
    organisation_id: str = Field(examples=[EXAMPLE_ORG_ID])
    role: str = Field(examples=["member"])


# What an account may still lack before an admin can validate it (User.missing).
MissingItem = Literal[
    "first_name",
    "last_name",
    "phone",
    "address_line",
    "postal_code",
    "city",
    "birth_date",
    "email",
    "email_verified",
]


class User(BaseModel):
    id: str = Field(examples=[EXAMPLE_USER_ID])
    username: str = Field(examples=["Dupont.Jean"], description="As typed at registration.")
    email: str | None = Field(examples=["jean.dupont@example.org"])
    email_verified: bool = Field(examples=[True])
    profile: Profile
    profile_complete: bool = Field(examples=[True])
    status: UserStatus = Field(examples=["pending"])
    pending: bool = Field(examples=[True], description="Waiting for an admin's validation.")
    organisation_id: str | None = Field(examples=[EXAMPLE_ORG_ID])
    memberships: list[Membership]
    create_time: dt.datetime | None = Field(examples=[_EXAMPLE_TIME])
    missing: list[MissingItem] = Field(
        examples=[["phone", "birth_date", "email_verified"]],
        description=(
            "What keeps the account's information from being complete, in the profile's order: "
            "profile fields, then `email` (none on file) or `email_verified` (not confirmed). "
            "Empty when `profile_complete`."
        ),
    )

    @classmethod
    def from_proto(cls, user: identity_pb2.User) -> User:
        return cls(
            id=user.id,
            username=user.username,
            email=_none_if_empty(user.email),
            email_verified=user.email_verified,
            profile=Profile.from_proto(user.profile),
            profile_complete=user.profile_complete,
            status=UserStatus.from_proto(user.status),
            pending=user.pending,
            organisation_id=_none_if_empty(user.organisation_id),
            memberships=[
                Membership(organisation_id=m.organisation_id, role=m.role) for m in user.memberships
            ],
            create_time=_time(user.create_time, user.HasField("create_time")),
            missing=[cast("MissingItem", item) for item in user.missing],
        )


class UserPage(BaseModel):
    items: list[User]
    next_page_token: str | None = Field(
        examples=[None], description="Pass as page_token for the next page; null on the last."
    )


# --- registration and password -----------------------------------------------------------


class RegistrationBody(_Request):
    # Another portal has a model of this name, so OpenAPI names it by module: kept at the
    # name clients were generated with before the per-portal move.
    __module__ = "services.gateway.schemas"

    organisation_id: uuid.UUID = Field(examples=[EXAMPLE_ORG_ID])
    username: str = _text("Dupont.Jean", description="Kept as typed; unique ignoring case.")
    email: str = Field(
        max_length=EMAIL_MAX,
        examples=["jean.dupont@example.org"],
        json_schema_extra={"format": "email"},
    )
    password: str = _text("correct horse battery staple", max_length=SECRET_MAX)
    first_name: str = _text("Jean")
    last_name: str = _text("Dupont")


class TokenBody(_Request):
    token: str = _text("vf_Zx81…", max_length=TOKEN_MAX, description="From the mailed link.")


class UsernameBody(_Request):
    username: str = _text("dupont.jean")


class ForgotPasswordBody(_Request):
    login: str = _text("jean.dupont@example.org", description="A username or an e-mail address.")


class ResetPasswordBody(_Request):
    token: str = _text("pr_Q9d2…", max_length=TOKEN_MAX, description="From the mailed link.")
    new_password: str = _text("another long passphrase", max_length=SECRET_MAX)


# --- organisations and admin ---------------------------------------------------------------


class Organisation(BaseModel):
    id: str = Field(examples=[EXAMPLE_ORG_ID])
    kind: OrganisationKind = Field(examples=["association"])
    name: str = Field(examples=["Protection civile du Var"])
    code: str | None = Field(examples=["83"])
    create_time: dt.datetime | None = Field(examples=[_EXAMPLE_TIME])

    @classmethod
    def from_proto(cls, organisation: identity_pb2.Organisation) -> Organisation:
        return cls(
            id=organisation.id,
            kind=OrganisationKind.from_proto(organisation.kind),
            name=organisation.name,
            code=_none_if_empty(organisation.code),
            create_time=_time(organisation.create_time, organisation.HasField("create_time")),
        )


class OrganisationPage(BaseModel):
    items: list[Organisation]
    next_page_token: str | None = Field(examples=[None])


class OrganisationBody(_Request):
    kind: OrganisationKind = Field(examples=["association"])
    name: str = _text("Protection civile du Var")
    code: str | None = _optional_text("83", max_length=64)


class CreateUserBody(_Request):
    username: str = _text("Martin.Claire")
    email: str | None = Field(
        default=None,
        max_length=EMAIL_MAX,
        examples=["claire.martin@example.org"],
        json_schema_extra={"format": "email"},
        description="Optional: an admin can complete it later. The link to choose a password "
        "goes there.",
    )
    first_name: str = _text("Claire")
    last_name: str = _text("Martin")
    roles: list[str] = Field(
        default_factory=list,
        max_length=20,
        examples=[["member"]],
        description=ROLE_DESCRIPTION,
    )


class EmailBody(_Request):
    # Another portal has a model of this name, so OpenAPI names it by module: kept at the
    # name clients were generated with before the per-portal move.
    __module__ = "services.gateway.schemas"

    email: str = Field(
        max_length=EMAIL_MAX,
        examples=["jean.dupont@example.org"],
        json_schema_extra={"format": "email"},
    )


class RoleBody(_Request):
    organisation_id: uuid.UUID = Field(examples=[EXAMPLE_ORG_ID])
    role: str = Field(pattern=ROLE_PATTERN, examples=["editor"], description=ROLE_DESCRIPTION)


class UsernameRecoveryBody(_Request):
    email: str = Field(
        max_length=EMAIL_MAX,
        examples=["jean.dupont@example.org"],
        json_schema_extra={"format": "email"},
    )
    verification_reference: str = _text(
        "ticket 4521, ID card checked", max_length=500, description="Kept in the audit."
    )


class AuditEvent(BaseModel):
    id: str = Field(examples=["9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"])
    time: dt.datetime | None = Field(examples=[_EXAMPLE_TIME])
    event: str = Field(examples=["password_reset.sent"])
    actor_id: str | None = Field(examples=[EXAMPLE_USER_ID])
    user_id: str | None = Field(examples=[EXAMPLE_USER_ID])
    detail: dict[str, str] = Field(examples=[{"channel": "email"}])

    @classmethod
    def from_proto(cls, event: identity_pb2.AuditEvent) -> AuditEvent:
        return cls(
            id=event.id,
            time=_time(event.time, event.HasField("time")),
            event=event.event,
            actor_id=_none_if_empty(event.actor_id),
            user_id=_none_if_empty(event.user_id),
            detail=dict(event.detail),
        )


class AuditEventPage(BaseModel):
    items: list[AuditEvent]
    next_page_token: str | None = Field(examples=[None])


# Their annotations resolve here, not in the module they are named after (see the class note).
for _renamed in (RegistrationBody, EmailBody):
    _renamed.model_rebuild(_types_namespace=globals())
