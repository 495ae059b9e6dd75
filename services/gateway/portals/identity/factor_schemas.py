"""The JSON shapes of second factors: the sign-in's second step, passkeys, TOTP, recovery codes.

WebAuthn's options and credentials travel as the JSON objects the browser's
`PublicKeyCredential` API uses (binary fields in base64url, as `toJSON()` writes them); the
gateway checks their shape (an object, a size cap) and identity checks everything else.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from guichet.identity.v1 import identity_pb2
from pydantic import BaseModel, Field

from services.gateway.fields import StrictBool, text
from services.gateway.portals.identity.schemas import TOKEN_MAX, _Request

SecondFactorMethod = Literal["totp", "passkey", "recovery_code"]
# A WebAuthn credential is a few hundred bytes to a few KiB (attestation certificates).
CREDENTIAL_MAX = 64 * 1024
_CREDENTIAL_EXAMPLE = {
    "id": "Xq3sXbJ1…",
    "rawId": "Xq3sXbJ1…",
    "type": "public-key",
    "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Ii…", "authenticatorData": "…"},
}


def credential_json(credential: dict[str, Any], field: str = "credential") -> str:
    """The credential as identity reads it, refused when larger than any real one."""
    text = json.dumps(credential, separators=(",", ":"))
    if len(text) > CREDENTIAL_MAX:
        from services.gateway.problems import FieldError, validation_problem

        raise validation_problem(
            [
                FieldError(
                    field,
                    "is too large for a WebAuthn credential",
                    "too_long",
                    {"max_length": CREDENTIAL_MAX},
                )
            ]
        )
    return text


class SecondFactorChallenge(BaseModel):
    """The password was right; answer with one of `methods` at POST /v1/auth/second-factor."""

    ticket: str = Field(
        description="Proves the password for `expires_in` seconds; send it back as it is.",
        examples=["t1.3f2a….6d5a….1796605950.1ee3….N_ps…"],
    )
    methods: list[SecondFactorMethod] = Field(examples=[["totp", "recovery_code"]])
    expires_in: int = Field(description="Seconds the ticket stays valid.", examples=[300])

    @classmethod
    def from_proto(cls, challenge: identity_pb2.SecondFactorChallenge) -> SecondFactorChallenge:
        methods: list[SecondFactorMethod] = [
            m for m in ("totp", "passkey", "recovery_code") if m in challenge.methods
        ]
        return cls(ticket=challenge.ticket, methods=methods, expires_in=challenge.expires_in)


class SecondFactorBody(_Request):
    """Exactly one of `code`, `recovery_code`, `passkey` (422 `one_second_factor` otherwise)."""

    ticket: str = text(TOKEN_MAX, "t1.3f2a….N_ps…", description="From the password step.")
    code: str | None = Field(
        default=None,
        max_length=16,
        description="The 6 digits of the authenticator app.",
        examples=["492039"],
    )
    recovery_code: str | None = Field(
        default=None,
        max_length=32,
        description="One of the recovery codes (used once).",
        examples=[None],
    )
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="The PublicKeyCredential answering POST /v1/auth/passkey/options (JSON).",
        examples=[None],
        # A credential carries the authenticator's `response` object.
        json_schema_extra={
            "required": ["response"],
            "properties": {"response": {"type": "object"}},
        },
    )


class PasskeyOptionsBody(_Request):
    ticket: str | None = Field(
        default=None,
        max_length=TOKEN_MAX,
        description="The ticket of a second-factor challenge; none to sign in with a passkey "
        "alone.",
        examples=[None],
    )


class PasskeyOptions(BaseModel):
    """Options for the browser's `navigator.credentials.get()` or `.create()`, as JSON."""

    options: dict[str, Any] = Field(
        examples=[{"challenge": "mK1q…", "rpId": "guichet.example", "userVerification": "required"}]
    )

    @classmethod
    def from_json(cls, text: str) -> PasskeyOptions:
        return cls(options=json.loads(text))


class PasskeySignInBody(_Request):
    credential: dict[str, Any] = Field(examples=[_CREDENTIAL_EXAMPLE])


class Passkey(BaseModel):
    id: str = Field(examples=["8c1d6a52-3f1e-4e0b-9a7c-2d4f6b8e0a1c"])
    name: str = Field(examples=["Téléphone"])
    create_time: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    last_use_time: dt.datetime | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, passkey: identity_pb2.Passkey) -> Passkey:
        return cls(
            id=passkey.id,
            name=passkey.name,
            create_time=(
                passkey.create_time.ToDatetime(dt.UTC) if passkey.HasField("create_time") else None
            ),
            last_use_time=(
                passkey.last_use_time.ToDatetime(dt.UTC)
                if passkey.HasField("last_use_time")
                else None
            ),
        )


class SecondFactors(BaseModel):
    """The signed-in account's second factors."""

    totp: bool = Field(description="An authenticator app is set up.", examples=[True])
    passkeys: list[Passkey]
    recovery_codes_left: int = Field(examples=[10])
    required: StrictBool = Field(
        description="Some of the account's roles need a second factor (the organisation's rule "
        "for the roles that act for others, or the platform's for ops_admin).",
        examples=[True],
    )
    withheld_roles: list[str] = Field(
        description="Roles this session does not carry because it used no second factor: set "
        "one up, then sign in again.",
        examples=[[]],
    )

    @classmethod
    def from_proto(cls, response: identity_pb2.GetSecondFactorsResponse) -> SecondFactors:
        return cls(
            totp=response.totp,
            passkeys=[Passkey.from_proto(p) for p in response.passkeys],
            recovery_codes_left=response.recovery_codes_left,
            required=response.required,
            withheld_roles=list(response.withheld_roles),
        )


class TotpEnrolment(BaseModel):
    secret: str = Field(
        description="Base32, to type into an authenticator app.",
        examples=["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
    )
    otpauth_uri: str = Field(
        description="The same as an otpauth:// URI (for a QR code).",
        examples=["otpauth://totp/Guichet:dupont.jean?secret=JBSW…&issuer=Guichet"],
    )

    @classmethod
    def from_proto(cls, response: identity_pb2.BeginTotpEnrolmentResponse) -> TotpEnrolment:
        return cls(secret=response.secret, otpauth_uri=response.otpauth_uri)


class TotpCodeBody(_Request):
    code: str = text(16, "492039", description="The 6 digits the authenticator app shows.")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Shown once: each signs in once when the other factors are lost.",
        examples=[["K7QM-2XTA-9RHD-WPZE"]],
    )


class PasskeyRegistrationBody(_Request):
    credential: dict[str, Any] = Field(examples=[_CREDENTIAL_EXAMPLE])
    name: str = Field(default="", max_length=100, examples=["Téléphone"])


class RegisteredPasskey(BaseModel):
    passkey: Passkey
    recovery_codes: list[str] = Field(
        description="Set when this is the account's first second factor (shown once).",
        examples=[[]],
    )


class SecondFactorPolicyBody(_Request):
    required: StrictBool = Field(
        description="Require a second factor for the organisation's roles that act for others "
        "(its admins, support agents).",
        examples=[True],
    )
