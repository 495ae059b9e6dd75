"""Passkeys (WebAuthn, the `webauthn` library): registration, and assertions as a first factor
(passwordless, user verification required) or as the second factor after a password.

Every ceremony starts with a random challenge recorded (as its SHA-256) with its purpose, its
account and a five-minute expiry, and the answer consumes it in one `DELETE … RETURNING`: a
challenge serves once, a replayed assertion finds nothing. The relying party is
`WEBAUTHN_RP_ID` and only `WEBAUTHN_ORIGINS` (the portal's origin) may answer. Signature counters
that go backwards are refused (a cloned authenticator), as the library checks.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services.identity.domain import second_factor
from services.identity.domain.common import audit, check_name, sha256_hex
from services.identity.domain.roles import require_user
from services.identity.models import Passkey, User, WebauthnChallenge
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, Unauthenticated, Validator

CHALLENGE_TTL = timedelta(minutes=5)
REGISTER = "register"
SECOND_FACTOR = "second_factor"
SIGN_IN = "sign_in"
MAX_CREDENTIAL_JSON = 64 * 1024
PASSKEY_REFUSED = "this passkey was not accepted"
# What a credential from the outside may make the library raise: its own refusals, and the
# parsing errors of a structure that is not what WebAuthn sends.
_MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _challenge_of(credential: dict[str, Any]) -> bytes | None:
    """The challenge an authenticator answered, read from its clientDataJSON."""
    try:
        client_data = json.loads(_b64url_decode(credential["response"]["clientDataJSON"]))
        return _b64url_decode(str(client_data["challenge"]))
    except (KeyError, TypeError, ValueError):
        return None


def parse_credential(raw: str, field: str = "credential") -> dict[str, Any]:
    """The browser's PublicKeyCredential (JSON); INVALID_ARGUMENT naming `field` otherwise."""
    v = Validator()
    v.require(field, raw)
    v.check(len(raw) <= MAX_CREDENTIAL_JSON, field, "is too long")
    v.raise_if_any()
    try:
        credential = json.loads(raw)
    except ValueError:
        credential = None
    v.check(
        isinstance(credential, dict) and isinstance(credential.get("response"), dict),
        field,
        "must be a WebAuthn credential (JSON)",
    )
    v.raise_if_any()
    assert isinstance(credential, dict)
    return credential


async def _new_challenge(
    session: AsyncSession, *, now: datetime, purpose: str, user_id: uuid.UUID | None
) -> bytes:
    challenge = secrets.token_bytes(32)
    session.add(
        WebauthnChallenge(
            challenge_hash=sha256_hex(bytes_to_base64url(challenge)),
            purpose=purpose,
            user_id=user_id,
            expires_at=now + CHALLENGE_TTL,
        )
    )
    await session.flush()
    return challenge


async def _consume_challenge(
    session: AsyncSession, *, now: datetime, purpose: str, challenge: bytes | None
) -> WebauthnChallenge | None:
    if challenge is None:
        return None
    row = (
        await session.execute(
            delete(WebauthnChallenge)
            .where(
                WebauthnChallenge.challenge_hash == sha256_hex(bytes_to_base64url(challenge)),
                WebauthnChallenge.purpose == purpose,
                WebauthnChallenge.expires_at > now,
            )
            .returning(WebauthnChallenge.user_id, WebauthnChallenge.purpose)
        )
    ).first()
    if row is None:
        return None
    return WebauthnChallenge(user_id=row.user_id, purpose=row.purpose)


async def _passkeys_of(session: AsyncSession, user_id: uuid.UUID) -> list[Passkey]:
    query = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
    return list((await session.execute(query)).scalars().all())


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=_b64url_decode(passkey.credential_id))


# --- registration ------------------------------------------------------------------------------


async def registration_options(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
) -> str:
    """The options for `navigator.credentials.create()` (JSON), for the signed-in user."""
    principal = require_user(actor)
    user = await session.get(User, uuid.UUID(principal.user_id))
    if user is None:
        raise Unauthenticated("this account no longer exists")
    await second_factor.require_step_up(session, principal, user.id)
    challenge = await _new_challenge(session, now=now, purpose=REGISTER, user_id=user.id)
    display = " ".join(part for part in (user.first_name, user.last_name) if part)
    options = generate_registration_options(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        user_name=user.username,
        user_id=user.id.bytes,
        user_display_name=display or user.username,
        challenge=challenge,
        exclude_credentials=[_descriptor(p) for p in await _passkeys_of(session, user.id)],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options)


@dataclass(frozen=True)
class Registered:
    passkey: Passkey
    recovery_codes: list[str]


async def register(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    credential_json: str,
    name: str,
) -> Registered:
    """Verifies the authenticator's answer and keeps its public key."""
    principal = require_user(actor)
    user_id = uuid.UUID(principal.user_id)
    v = Validator()
    name = " ".join(name.split()) or "Passkey"
    check_name(v, "name", name)
    v.raise_if_any()
    credential = parse_credential(credential_json)
    await second_factor.require_step_up(session, principal, user_id)
    challenge = await _consume_challenge(
        session, now=now, purpose=REGISTER, challenge=_challenge_of(credential)
    )
    if challenge is None or challenge.user_id != user_id:
        raise FailedPrecondition(
            "this passkey request has expired: start again", reason="passkey_challenge_invalid"
        )
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=_challenge_of(credential) or b"",
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
        )
    except _MALFORMED as error:
        raise FailedPrecondition(
            f"this passkey could not be registered: {error}", reason="passkey_invalid"
        ) from None
    totp, had_passkey = await second_factor.factor_flags(session, user_id)
    passkey = Passkey(
        id=uuid.uuid4(),
        user_id=user_id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        name=name,
        user_verified=verified.user_verified,
        created_at=now,
    )
    session.add(passkey)
    try:
        await session.flush()
    except IntegrityError:
        raise FailedPrecondition(
            "this passkey is already registered", reason="passkey_present"
        ) from None
    audit(
        session=session,
        now=now,
        event="second_factor.passkey_added",
        actor=principal,
        user_id=user_id,
        passkey_id=passkey.id,
        name=name,
    )
    await second_factor.upgrade_session(session, principal, second_factor.PASSKEY_SECOND_AMR)
    codes: list[str] = []
    if not totp and not had_passkey:
        codes = await second_factor.new_recovery_codes(session, now=now, user_id=user_id)
    return Registered(passkey=passkey, recovery_codes=codes)


async def remove(
    *, session: AsyncSession, actor: Principal | None, now: datetime, passkey_id: uuid.UUID
) -> None:
    principal = require_user(actor)
    user_id = uuid.UUID(principal.user_id)
    await second_factor.require_step_up(session, principal, user_id)
    removed = await session.execute(
        delete(Passkey)
        .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        .returning(Passkey.name)
    )
    row = removed.first()
    if row is None:
        raise NotFound("passkey not found")
    audit(
        session=session,
        now=now,
        event="second_factor.passkey_removed",
        actor=principal,
        user_id=user_id,
        passkey_id=passkey_id,
        name=row.name,
    )
    await second_factor._drop_codes_when_no_factor(session, user_id)


# --- assertions --------------------------------------------------------------------------------


async def assertion_options(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    user_id: uuid.UUID | None,
) -> str:
    """Options for `navigator.credentials.get()`: for one account's passkeys (second factor),
    or for any discoverable passkey of this site (sign-in without a password)."""
    allow: list[PublicKeyCredentialDescriptor] = []
    if user_id is not None:
        allow = [_descriptor(p) for p in await _passkeys_of(session, user_id)]
        if not allow:
            raise FailedPrecondition("this account has no passkey", reason="passkey_missing")
    challenge = await _new_challenge(
        session, now=now, purpose=SECOND_FACTOR if user_id else SIGN_IN, user_id=user_id
    )
    options = generate_authentication_options(
        rp_id=settings.webauthn_rp_id,
        challenge=challenge,
        allow_credentials=allow,
        user_verification=(
            UserVerificationRequirement.PREFERRED
            if user_id
            else UserVerificationRequirement.REQUIRED
        ),
    )
    return options_to_json(options)


async def verify_assertion(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    credential: dict[str, Any],
    user_id: uuid.UUID | None,
) -> Passkey | None:
    """The passkey that answered, its counter and last use updated; None when the answer is not
    valid (unknown credential, wrong challenge or account, bad signature, counter replay).
    With `user_id` (second factor) the passkey must be that account's; without, user
    verification is required (the passkey is both factors)."""
    purpose = SECOND_FACTOR if user_id else SIGN_IN
    challenge_bytes = _challenge_of(credential)
    challenge = await _consume_challenge(
        session, now=now, purpose=purpose, challenge=challenge_bytes
    )
    if challenge is None or challenge.user_id != user_id:
        return None
    credential_id = str(credential.get("rawId") or credential.get("id") or "")
    passkey = (
        await session.execute(
            select(Passkey).where(Passkey.credential_id == credential_id).with_for_update()
        )
    ).scalar_one_or_none()
    if passkey is None or (user_id is not None and passkey.user_id != user_id):
        return None
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge_bytes or b"",
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            credential_public_key=_b64url_decode(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=user_id is None,
        )
    except _MALFORMED:
        return None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now
    return passkey
