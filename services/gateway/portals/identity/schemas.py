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

from services.gateway.fields import Date, Email, optional_text, text

# Identity's limits (services/identity/domain; tests/gateway/test_limits.py compares them).
NAME_MAX = 100  # first and last names, city (check_name's default)
ORGANISATION_NAME_MAX = 200
ADDRESS_MAX = 200
SECRET_MAX = 1024  # a password at login (identity's cap)
PASSWORD_MIN, PASSWORD_MAX = 12, 128  # a new password
TOKEN_MAX = 200  # link and refresh tokens
EMAIL_MAX = 320
REFERENCE_MAX = 200
USERNAME_PATTERN = r"^[A-Za-z0-9._-]{3,64}$"
LOGIN_USERNAME_MAX = 64
ORGANISATION_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
PHONE_PATTERN = r"^\+?[0-9 ().-]{6,32}$"
POSTAL_CODE_PATTERN = r"^[A-Za-z0-9 -]{2,16}$"

EXAMPLE_USER_ID = "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"
EXAMPLE_ORG_ID = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"
_EXAMPLE_TIME = "2025-03-14T09:26:53Z"


class _Request(BaseModel):
    """Unknown fields are refused: a typo (`firstname`) must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _text(example: str, *, max_length: int = NAME_MAX, description: str | None = None) -> Any:
    return text(max_length, example, description=description)


def _optional_text(example: str, *, max_length: int = NAME_MAX) -> Any:
    return optional_text(max_length, example)


def _username(example: str, description: str | None = None) -> Any:
    return text(
        64,
        example,
        pattern=USERNAME_PATTERN,
        min_length=3,
        description="3 to 64 letters, digits, '.', '_' or '-'."
        + (f" {description}" if description else ""),
    )


def _secret(example: str, *, min_length: int = 1, max_length: int = SECRET_MAX) -> Any:
    return Field(min_length=min_length, max_length=max_length, examples=[example])


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


# Every role identity knows (services/identity/domain/roles.py ALL_ROLES; a test compares).
class RoleName(StrEnum):
    """Every role identity knows (services/identity/domain/roles.py ALL_ROLES; a test compares).
    Which roles fit which kind of organisation is identity's rule (422 otherwise)."""

    ASSOCIATION_ADMIN = "association_admin"
    BUSINESS_ACCOUNT_MANAGER = "business_account_manager"
    CUSTOMER_USER = "customer_user"
    EDITOR = "editor"
    MEMBER = "member"
    OPS_ADMIN = "ops_admin"
    PARTNER_MANAGER = "partner_manager"
    PROGRAM_ACCOUNT_MANAGER = "program_account_manager"
    READ_ONLY = "read_only"
    SUPPORT_AGENT = "support_agent"
    WORKSHOP_OWNER = "workshop_owner"


# --- tokens ----------------------------------------------------------------------------------


class LoginBody(_Request):
    # Not a demo user: the fuzzer logs in with the documented example and a wrong password, and
    # five of those would lock a demo account for the browser tests sharing its stack.
    username: str = _text(
        "jean.exemple", max_length=LOGIN_USERNAME_MAX, description="Case-insensitive."
    )
    password: str = _secret("correct horse battery staple")


class RefreshBody(_Request):
    refresh_token: str = _secret("rt_6Qe3", max_length=TOKEN_MAX)


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
    phone: str = Field(pattern=PHONE_PATTERN, examples=["+33 6 12 34 56 78"])
    address_line: str = _text("12 rue de la République", max_length=ADDRESS_MAX)
    postal_code: str = Field(pattern=POSTAL_CODE_PATTERN, examples=["83000"])
    city: str = _text("Toulon")
    birth_date: Date = Field(
        examples=["1984-05-17"],
        description="From 1900 to today (422 `in_the_future` or `too_old` otherwise).",
    )

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


class SelfRegistrationBody(_Request):
    """A member registering themself (the kind of organisation decides what is asked)."""

    organisation_id: uuid.UUID = Field(examples=[EXAMPLE_ORG_ID])
    username: str = _username("Dupont.Jean", "Kept as typed; unique ignoring case.")
    email: Email = Field(examples=["jean.dupont@example.org"])
    password: str = Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        examples=["correct horse battery staple"],
        description="12 to 128 characters, not easy to guess (422 `weak_password` otherwise).",
    )
    first_name: str = _text("Jean")
    last_name: str = _text("Dupont")


class TokenBody(_Request):
    token: str = _text("vf_Zx81", max_length=TOKEN_MAX, description="From the mailed link.")


class UsernameBody(_Request):
    username: str = _text("dupont.jean", max_length=LOGIN_USERNAME_MAX)


class ForgotPasswordBody(_Request):
    login: str = _text(
        "jean.dupont@example.org",
        max_length=EMAIL_MAX,
        description="A username or an e-mail address.",
    )


class ResetPasswordBody(_Request):
    token: str = _text("pr_Q9d2", max_length=TOKEN_MAX, description="From the mailed link.")
    new_password: str = Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        examples=["another long passphrase"],
        description="12 to 128 characters, not easy to guess (422 `weak_password` otherwise).",
    )


# --- organisations and admin ---------------------------------------------------------------


class Organisation(BaseModel):
    id: str = Field(examples=[EXAMPLE_ORG_ID])
    kind: OrganisationKind = Field(examples=["association"])
    name: str = Field(examples=["Protection civile du Var"])
    code: str | None = Field(examples=["83"])
    create_time: dt.datetime | None = Field(examples=[_EXAMPLE_TIME])
    second_factor_required: bool = Field(
        default=False,
        description="Its roles that act for others (admins, support agents) need a second factor.",
        examples=[False],
    )

    @classmethod
    def from_proto(cls, organisation: identity_pb2.Organisation) -> Organisation:
        return cls(
            id=organisation.id,
            kind=OrganisationKind.from_proto(organisation.kind),
            name=organisation.name,
            code=_none_if_empty(organisation.code),
            create_time=_time(organisation.create_time, organisation.HasField("create_time")),
            second_factor_required=organisation.second_factor_required,
        )


class OrganisationPage(BaseModel):
    items: list[Organisation]
    next_page_token: str | None = Field(examples=[None])


class OrganisationBody(_Request):
    kind: OrganisationKind = Field(examples=["association"])
    name: str = _text("Protection civile du Var", max_length=ORGANISATION_NAME_MAX)
    code: str | None = Field(
        default=None,
        pattern=ORGANISATION_CODE_PATTERN,
        examples=["83"],
        description="1 to 32 letters, digits, '_' or '-'; unique per kind.",
    )


class CreateUserBody(_Request):
    username: str = _username("Martin.Claire")
    email: Email | None = Field(
        default=None,
        examples=["claire.martin@example.org"],
        description="Optional: an admin can complete it later. The link to choose a password "
        "goes there.",
    )
    first_name: str = _text("Claire")
    last_name: str = _text("Martin")
    roles: list[RoleName] = Field(
        default_factory=list,
        max_length=20,
        examples=[["member"]],
        description=ROLE_DESCRIPTION,
    )


class AccountEmailBody(_Request):
    """An admin setting an account's e-mail address."""

    email: Email = Field(examples=["jean.dupont@example.org"])


class RoleBody(_Request):
    organisation_id: uuid.UUID = Field(
        examples=[EXAMPLE_ORG_ID],
        description="The user's own organisation (422 `own_organisation` otherwise).",
    )
    role: RoleName = Field(examples=["editor"], description=ROLE_DESCRIPTION)


class UsernameRecoveryBody(_Request):
    email: Email = Field(examples=["jean.dupont@example.org"])
    verification_reference: str = _text(
        "ticket 4521, ID card checked", max_length=REFERENCE_MAX, description="Kept in the audit."
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
