"""Second factors: who needs one, TOTP with its recovery codes, tickets, and the admin's reset.

**Who needs one.** The roles that act for others — each kind's admin role (business account
manager, association admin, partner manager, workshop owner: they create accounts, grant roles,
validate members and delegate access to thousands of program accounts), support agents and
ops_admin — need a second factor when their organisation requires one
(`organisations.second_factor_required`); the platform always requires one for ops_admin.
A session that did not use a second factor carries its other roles only: the token says which
were held back (`withheld`), and the portal leads to the enrolment page.

**Whoever enrolled one uses it**: once a user has a confirmed TOTP or a passkey, a right password
answers with a ticket (signed, short-lived) instead of tokens, and the sign-in completes with a
code, a recovery code or a passkey (`tokens.complete_second_factor`).

**TOTP** (RFC 6238, `pyotp`): 160-bit secrets sealed with AES-GCM under a key derived from
`MAIL_SEALING_KEY`; codes of ±`TOTP_VALID_WINDOW` steps are accepted, each step once per user
(`last_step` only moves forward, in the same statement that checks it). **Recovery codes**: ten
one-time codes of 80 random bits, shown once, stored as SHA-256 like the mailed links.

**Changing factors** needs a session that used one, once the account has any: a password alone
never adds, removes or replaces the factor that guards the account. Losing every factor: a
recovery code signs in; an admin of the organisation (or ops_admin) resets the factors, which is
audited and mailed to the user.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import audit, queue_mail, sha256_hex
from services.identity.domain.devices import Keyring
from services.identity.domain.roles import (
    ADMIN_ROLES_BY_KIND,
    OPS_ADMIN,
    SUPPORT_AGENT,
    organisation_for_admin,
    require_user,
    user_for_admin,
)
from services.identity.models import (
    Organisation,
    Passkey,
    RecoveryCode,
    TotpCredential,
    User,
    WebauthnChallenge,
)
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    Validator,
)

# The roles that act for others (DOMAIN.md: "a second factor ... for the roles that act for
# others"): each kind's admin role, support agents and operator admins.
ROLES_ACTING_FOR_OTHERS: frozenset[str] = frozenset().union(
    *ADMIN_ROLES_BY_KIND.values(), {SUPPORT_AGENT, OPS_ADMIN}
)
# Required by the platform whatever the organisation says.
ALWAYS_REQUIRED: frozenset[str] = frozenset({OPS_ADMIN})

# RFC 8176 authentication method references, as the token's `amr` claim lists them.
PASSWORD_AMR = "pwd"
MFA = "mfa"
TOTP_AMR = ("pwd", "otp", MFA)
RECOVERY_AMR = ("pwd", "otp", MFA)  # a one-time code, like an OTP
PASSKEY_SECOND_AMR = ("pwd", "hwk", MFA)
PASSKEY_FIRST_AMR = ("hwk", "user", MFA)  # a passkey with user verification is two factors

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud safely
_RECOVERY_LENGTH = 16  # 16 of 30 symbols: 78.5 bits
TICKET_PREFIX = "t1"

METHOD_TOTP = "totp"
METHOD_PASSKEY = "passkey"
METHOD_RECOVERY = "recovery_code"

INVALID_CODE = "this code is not valid"


def amr_text(amr: Iterable[str]) -> str:
    return " ".join(amr)


def has_mfa(amr: Iterable[str]) -> bool:
    return MFA in set(amr)


def withheld_roles(
    roles: Iterable[str], *, organisation_requires: bool, amr: Iterable[str]
) -> frozenset[str]:
    """The roles this session may not use: those needing a second factor it did not use."""
    if has_mfa(amr):
        return frozenset()
    needing = ROLES_ACTING_FOR_OTHERS if organisation_requires else ALWAYS_REQUIRED
    return frozenset(role for role in roles if role in needing)


def claims_roles(
    memberships: Iterable[tuple[str, str]], withheld: frozenset[str]
) -> dict[str, list[str]]:
    """{organisation id: sorted roles} without the withheld ones."""
    orgs: dict[str, list[str]] = {}
    for organisation_id, role in memberships:
        if role not in withheld:
            orgs.setdefault(organisation_id, []).append(role)
    return {org: sorted(roles) for org, roles in orgs.items()}


# --- tickets: "the password was right, now the second factor" ------------------------------------


@dataclass(frozen=True)
class Ticket:
    user_id: uuid.UUID
    issued_at: int


def issue_ticket(keyring: Keyring, *, user_id: uuid.UUID, now: datetime) -> str:
    message = f"{user_id.hex}.{int(now.timestamp())}.{secrets.token_hex(8)}"
    return f"{TICKET_PREFIX}.{keyring.signing_kid}.{message}.{keyring.mac('ticket', message)}"


def read_ticket(
    keyring: Keyring, ticket: str, *, settings: IdentitySettings, now: datetime
) -> Ticket:
    """The account a ticket was issued to; UNAUTHENTICATED when forged, malformed or expired."""
    refused = Unauthenticated(
        "this sign-in has expired: enter your password again", reason="ticket_invalid"
    )
    parts = ticket.split(".") if len(ticket) <= 200 else []
    if len(parts) != 6 or parts[0] != TICKET_PREFIX:
        raise refused
    _, kid, user_hex, issued, nonce, mac = parts
    if not keyring.verifies("ticket", f"{user_hex}.{issued}.{nonce}", kid, mac):
        raise refused
    try:
        user_id = uuid.UUID(hex=user_hex)
        issued_at = int(issued)
    except ValueError:
        raise refused from None
    if not 0 <= now.timestamp() - issued_at <= settings.second_factor_ticket_ttl_seconds:
        raise refused
    return Ticket(user_id=user_id, issued_at=issued_at)


# --- TOTP secrets at rest ---------------------------------------------------------------------

_TOTP_AAD = b"guichet-totp-secret"


def _sealing_key(settings: IdentitySettings) -> bytes:
    """A key of its own for TOTP secrets, derived from MAIL_SEALING_KEY (HKDF, RFC 5869)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"guichet/totp-secret/v1"
    ).derive(base64.b64decode(settings.mail_sealing_key))


def seal_secret(settings: IdentitySettings, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_sealing_key(settings)).encrypt(nonce, secret.encode(), _TOTP_AAD)
    return base64.b64encode(nonce + sealed).decode()


def unseal_secret(settings: IdentitySettings, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    return AESGCM(_sealing_key(settings)).decrypt(raw[:12], raw[12:], _TOTP_AAD).decode()


def _step_of_code(settings: IdentitySettings, secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, within the accepted window; None when none is."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in sorted(
        range(-settings.totp_valid_window, settings.totp_valid_window + 1), key=abs
    ):
        step = current + offset
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def normalise_code(raw: str) -> str:
    return "".join(raw.split()).replace("-", "")


async def use_totp(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    user_id: uuid.UUID,
    code: str,
    confirmed: bool = True,
) -> bool:
    """True when `code` is the user's current TOTP code and its step was never used (the step is
    recorded in the same statement: a replayed or concurrent second use finds it taken)."""
    code = normalise_code(code)
    if not code.isdigit() or len(code) != 6:
        return False
    query = select(TotpCredential).where(TotpCredential.user_id == user_id)
    credential = (await session.execute(query)).scalar_one_or_none()
    if credential is None or (credential.confirmed_at is not None) != confirmed:
        return False
    step = _step_of_code(settings, unseal_secret(settings, credential.secret_sealed), code, now)
    if step is None:
        return False
    taken = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == user_id, TotpCredential.last_step < step)
        .values(last_step=step)
        .returning(TotpCredential.user_id)
    )
    return taken.first() is not None


async def use_recovery_code(
    session: AsyncSession, *, now: datetime, user_id: uuid.UUID, code: str
) -> bool:
    """True when `code` is one of the user's unused recovery codes, now used (one statement)."""
    cleaned = normalise_code(code).upper()
    if len(cleaned) != _RECOVERY_LENGTH:
        return False
    used = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == sha256_hex(cleaned),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(RecoveryCode.id)
    )
    return used.first() is not None


def _format_recovery(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


async def new_recovery_codes(
    session: AsyncSession, *, now: datetime, user_id: uuid.UUID
) -> list[str]:
    """Replaces the user's recovery codes with ten new ones, returned once in clear."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODES)
    ]
    for code in codes:
        session.add(
            RecoveryCode(
                id=uuid.uuid4(), user_id=user_id, code_hash=sha256_hex(code), created_at=now
            )
        )
    await session.flush()
    return [_format_recovery(code) for code in codes]


# --- the signed-in user's factors ---------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """What the security page shows."""

    totp: bool
    passkeys: list[Passkey]
    recovery_codes_left: int
    required: bool
    withheld: frozenset[str]

    @property
    def enrolled(self) -> bool:
        return self.totp or bool(self.passkeys)


async def factor_flags(session: AsyncSession, user_id: uuid.UUID) -> tuple[bool, bool]:
    """(a confirmed TOTP, at least one passkey)."""
    row = (
        await session.execute(
            select(
                exists().where(
                    TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
                ),
                exists().where(Passkey.user_id == user_id),
            )
        )
    ).one()
    return bool(row[0]), bool(row[1])


async def required_roles(session: AsyncSession, user: User) -> frozenset[str]:
    """The roles of `user` that need a second factor, under its organisation's policy."""
    organisation = await session.get(Organisation, user.organisation_id)
    requires = bool(organisation and organisation.second_factor_required)
    roles = [membership.role for membership in user.memberships]
    return withheld_roles(roles, organisation_requires=requires, amr=())


async def status(*, session: AsyncSession, actor: Principal | None) -> Status:
    principal = require_user(actor)
    user = await _me(session, principal)
    totp, _ = await factor_flags(session, user.id)
    passkeys = (
        (
            await session.execute(
                select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.created_at)
            )
        )
        .scalars()
        .all()
    )
    left = (
        await session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
    ).scalar_one()
    needing = await required_roles(session, user)
    return Status(
        totp=totp,
        passkeys=list(passkeys),
        recovery_codes_left=int(left),
        required=bool(needing),
        withheld=frozenset(principal.withheld_roles),
    )


async def _me(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, uuid.UUID(principal.user_id))
    if user is None:
        raise Unauthenticated("this account no longer exists")
    return user


async def session_used_second_factor(session: AsyncSession, principal: Principal) -> bool:
    """Whether the caller's session used a second factor: its token says so, or its refresh-token
    family does (a factor enrolled during the session upgrades the family at once, before the
    access token is renewed)."""
    from services.identity.models import RefreshToken  # the model of tokens.py's rule

    if has_mfa(principal.amr):
        return True
    if not principal.session_id:
        return False
    try:
        family = uuid.UUID(principal.session_id)
    except ValueError:
        return False
    amr = await session.scalar(
        select(RefreshToken.amr)
        .where(RefreshToken.family_id == family)
        .order_by(RefreshToken.created_at.desc())
        .limit(1)
    )
    return amr is not None and has_mfa(amr.split())


async def require_step_up(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> None:
    """Changing factors needs a session that used one, once the account has any."""
    totp, passkey = await factor_flags(session, user_id)
    if (totp or passkey) and not await session_used_second_factor(session, principal):
        raise PermissionDenied(
            "sign in again with your second factor to change your second factors",
            reason="second_factor_needed",
        )


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str


async def begin_totp(
    *, session: AsyncSession, settings: IdentitySettings, actor: Principal | None, now: datetime
) -> TotpEnrolment:
    """A new secret waiting for its first code; replaces an unconfirmed one. Refused while a
    confirmed TOTP exists (remove it first): a second secret would silently replace the first."""
    principal = require_user(actor)
    user = await _me(session, principal)
    await require_step_up(session, principal, user.id)
    existing = await session.get(TotpCredential, user.id, with_for_update=True)
    if existing is not None and existing.confirmed_at is not None:
        raise FailedPrecondition(
            "an authenticator app is already set up: remove it first", reason="totp_present"
        )
    secret = pyotp.random_base32(32)
    if existing is None:
        session.add(
            TotpCredential(
                user_id=user.id,
                secret_sealed=seal_secret(settings, secret),
                confirmed_at=None,
                last_step=0,
                created_at=now,
            )
        )
    else:
        existing.secret_sealed = seal_secret(settings, secret)
        existing.last_step = 0
        existing.created_at = now
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=settings.totp_issuer)
    return TotpEnrolment(secret=secret, uri=uri)


async def confirm_totp(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    code: str,
) -> list[str]:
    """The first code proves the app holds the secret: the TOTP counts from now on. Returns new
    recovery codes when this is the account's first factor (none otherwise). The session that
    enrolled has now used a second factor (its refresh-token family says so)."""
    principal = require_user(actor)
    user = await _me(session, principal)
    v = Validator()
    v.require("code", code)
    v.raise_if_any()
    totp, passkey = await factor_flags(session, user.id)
    if not await use_totp(
        session, settings=settings, now=now, user_id=user.id, code=code, confirmed=False
    ):
        raise FailedPrecondition(
            "this code is not valid: check your authenticator app's time, and try the next code",
            reason="totp_code_invalid",
        )
    await session.execute(
        update(TotpCredential).where(TotpCredential.user_id == user.id).values(confirmed_at=now)
    )
    audit(
        session=session, now=now, event="second_factor.totp_added", actor=principal, user_id=user.id
    )
    await upgrade_session(session, principal, TOTP_AMR)
    if totp or passkey:
        return []
    return await new_recovery_codes(session, now=now, user_id=user.id)


async def upgrade_session(session: AsyncSession, principal: Principal, amr: Iterable[str]) -> None:
    """Marks the caller's session (refresh-token family) as having used a second factor."""
    from services.identity.models import RefreshToken  # the model of tokens.py's rule

    if principal.session_id:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == uuid.UUID(principal.session_id))
            .values(amr=amr_text(amr))
        )


async def remove_totp(*, session: AsyncSession, actor: Principal | None, now: datetime) -> None:
    principal = require_user(actor)
    user = await _me(session, principal)
    await require_step_up(session, principal, user.id)
    removed = await session.execute(
        delete(TotpCredential)
        .where(TotpCredential.user_id == user.id)
        .returning(TotpCredential.confirmed_at)
    )
    row = removed.first()
    if row is not None and row.confirmed_at is not None:
        audit(
            session=session,
            now=now,
            event="second_factor.totp_removed",
            actor=principal,
            user_id=user.id,
        )
    await _drop_codes_when_no_factor(session, user.id)


async def _drop_codes_when_no_factor(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Recovery codes recover a second factor: without any factor they would be a password."""
    totp, passkey = await factor_flags(session, user_id)
    if not totp and not passkey:
        await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def regenerate_recovery_codes(
    *, session: AsyncSession, actor: Principal | None, now: datetime
) -> list[str]:
    principal = require_user(actor)
    user = await _me(session, principal)
    totp, passkey = await factor_flags(session, user.id)
    if not totp and not passkey:
        raise FailedPrecondition(
            "set up an authenticator app or a passkey first", reason="second_factor_missing"
        )
    await require_step_up(session, principal, user.id)
    codes = await new_recovery_codes(session, now=now, user_id=user.id)
    audit(
        session=session,
        now=now,
        event="second_factor.recovery_codes_renewed",
        actor=principal,
        user_id=user.id,
    )
    return codes


async def admin_reset(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    user_id: uuid.UUID,
) -> None:
    """An admin of the user's organisation (or ops_admin) removes every second factor of an
    account whose owner lost them; audited and mailed. Nobody resets their own: a recovery code
    does that, and an admin whose factor is gone asks another admin."""
    principal = require_user(actor)
    user, _ = await user_for_admin(session, principal, user_id, lock=True)
    if principal.subject == str(user.id):
        raise PermissionDenied(
            "you cannot reset your own second factors: use a recovery code, or ask another admin",
            reason="own_second_factor",
        )
    if not await session_used_second_factor(session, principal):
        raise PermissionDenied(
            "sign in with your own second factor to reset someone else's",
            reason="second_factor_needed",
        )
    totp = await session.execute(
        delete(TotpCredential)
        .where(TotpCredential.user_id == user.id)
        .returning(TotpCredential.user_id)
    )
    passkeys = await session.execute(
        delete(Passkey).where(Passkey.user_id == user.id).returning(Passkey.id)
    )
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await session.execute(delete(WebauthnChallenge).where(WebauthnChallenge.user_id == user.id))
    removed_passkeys = len(passkeys.all())
    audit(
        session=session,
        now=now,
        event="second_factor.reset",
        actor=principal,
        user_id=user.id,
        totp=totp.first() is not None,
        passkeys=removed_passkeys,
    )
    if user.email:
        await queue_mail(
            session,
            settings,
            to=user.email,
            subject="Guichet : vos seconds facteurs ont été réinitialisés",
            body=(
                f"Bonjour {user.first_name or user.username},\n\n"
                "Un administrateur a supprimé l'application d'authentification, les clés d'accès "
                "et les codes de secours de votre compte "
                f"« {user.username} ». À votre prochaine connexion, votre mot de passe suffira "
                "et, si votre organisation l'exige, il vous sera demandé d'en configurer un "
                "nouveau.\n\nSi vous n'avez rien demandé, prévenez votre administrateur.\n"
            ),
        )


async def set_policy(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    organisation_id: uuid.UUID,
    required: bool,
) -> Organisation:
    """An admin of the organisation (or ops_admin) requires a second factor for its roles that
    act for others, or stops requiring it. Sessions already open keep their roles until their
    next refresh, which then holds back the roles needing a factor the session did not use."""
    principal = require_user(actor)
    organisation = await organisation_for_admin(session, principal, organisation_id)
    if organisation.second_factor_required != required:
        organisation.second_factor_required = required
        audit(
            session=session,
            now=now,
            event="organisation.second_factor_policy",
            actor=principal,
            user_id=None,
            organisation_id=organisation.id,
            required=required,
        )
    return organisation


def methods_of(totp: bool, passkey: bool, recovery: bool) -> list[str]:
    listed = []
    if totp:
        listed.append(METHOD_TOTP)
    if passkey:
        listed.append(METHOD_PASSKEY)
    if recovery:
        listed.append(METHOD_RECOVERY)
    return listed


def memberships_of(rows: Iterable[str] | None) -> list[tuple[str, str]]:
    """`"<organisation id> <role>"` strings (as the login statement aggregates them) as pairs."""
    pairs = []
    for row in rows or ():
        organisation_id, _, role = row.partition(" ")
        pairs.append((organisation_id, role))
    return pairs


def roles_of(memberships: Mapping[str, Iterable[str]]) -> list[str]:
    return [role for roles in memberships.values() for role in roles]
