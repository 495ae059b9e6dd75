"""What identity puts in place at start: service clients, signing and HMAC keys, the first admin.

Run under an advisory lock, so that many replicas starting together do it once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import second_factor
from services.identity.domain.accounts import new_user
from services.identity.domain.common import BOOTSTRAP_LOCK, audit, normalise_email, sha256_hex
from services.identity.domain.devices import Keyring, ensure_keyring
from services.identity.domain.roles import OPS_ADMIN, SUPPORT_AGENT
from services.identity.domain.signing_keys import current_signing_key
from services.identity.models import (
    Organisation,
    OrganisationKind,
    ServiceClient,
    TotpCredential,
    User,
    UserStatus,
)
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.names import name_key

BOOTSTRAP_ORGANISATION_NAME = "Guichet operations"
BOOTSTRAP_ORGANISATION_CODE = "ops"


async def sync_service_clients(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> None:
    """The SERVICE_CLIENTS setting is the source of truth: upsert its clients, drop the others."""
    clients = settings.service_client_secrets
    for client_id, secret in clients.items():
        statement = pg_insert(ServiceClient).values(
            client_id=client_id, secret_sha256=sha256_hex(secret), updated_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[ServiceClient.client_id],
                set_={"secret_sha256": statement.excluded.secret_sha256, "updated_at": now},
            )
        )
    await session.execute(
        delete(ServiceClient).where(ServiceClient.client_id.not_in(list(clients) or [""]))
    )


async def bootstrap(
    *, session: AsyncSession, settings: IdentitySettings, passwords: Passwords, now: datetime
) -> Keyring:
    """At start: service clients, a signing key, the HMAC keys (returned), and the first
    operator admin when configured.

    An existing admin is left as it is (its password is not reset from the environment); it only
    gets `BOOTSTRAP_ADMIN_TOTP_SECRET` as its TOTP when it has no second factor at all, since an
    ops_admin cannot work without one.
    """
    await session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK)))
    await sync_service_clients(session=session, settings=settings, now=now)
    await current_signing_key(session=session, settings=settings, now=now)
    keyring = await ensure_keyring(session, now=now)
    username = settings.bootstrap_admin_username
    if not username or not settings.bootstrap_admin_password:
        return keyring
    existing = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower())
    )
    if existing is not None:
        await _bootstrap_totp(session, settings, existing, now)
        return keyring
    organisation = (
        await session.execute(
            select(Organisation).where(
                Organisation.kind == OrganisationKind.OPERATOR.value,
                Organisation.code == BOOTSTRAP_ORGANISATION_CODE,
            )
        )
    ).scalar_one_or_none()
    if organisation is None:
        organisation = Organisation(
            id=uuid.uuid4(),
            kind=OrganisationKind.OPERATOR.value,
            name=BOOTSTRAP_ORGANISATION_NAME,
            name_key=name_key(BOOTSTRAP_ORGANISATION_NAME),
            code=BOOTSTRAP_ORGANISATION_CODE,
            created_at=now,
        )
        session.add(organisation)
        await session.flush()
    email = (
        normalise_email(settings.bootstrap_admin_email) if settings.bootstrap_admin_email else None
    )
    user = new_user(
        organisation=organisation,
        username=username,
        email=email,
        status=UserStatus.ACTIVE,
        first_name="",
        last_name="",
        now=now,
        roles=[OPS_ADMIN, SUPPORT_AGENT],
    )
    user.email_verified = email is not None
    user.password_hash = await passwords.hash(settings.bootstrap_admin_password)
    session.add(user)
    await session.flush()
    audit(
        session=session,
        now=now,
        event="user.created",
        actor="bootstrap",
        user_id=user.id,
        roles="ops_admin,support_agent",
    )
    await _bootstrap_totp(session, settings, user.id, now)
    return keyring


async def _bootstrap_totp(
    session: AsyncSession, settings: IdentitySettings, user_id: uuid.UUID, now: datetime
) -> None:
    if settings.bootstrap_admin_totp_secret is None:
        return
    totp, passkey = await second_factor.factor_flags(session, user_id)
    if totp or passkey:
        return
    await session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
    session.add(
        TotpCredential(
            user_id=user_id,
            secret_sealed=second_factor.seal_secret(settings, settings.bootstrap_admin_totp_secret),
            confirmed_at=now,
            last_step=0,
            created_at=now,
        )
    )
    audit(
        session=session,
        now=now,
        event="second_factor.totp_added",
        actor="bootstrap",
        user_id=user_id,
    )
    await session.flush()
