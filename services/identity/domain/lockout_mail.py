"""The mail to an account's owner the first time its username locks: someone failed to sign in
to it from devices it never signed in from. Apart from `tokens` because it is text, not the
sign-in's logic; it is queued in the caller's transaction like every mail (`common.queue_mail`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import throttles
from services.identity.domain.common import duration_text, queue_mail
from services.identity.domain.login_reads import Account
from services.identity.settings import IdentitySettings


async def mail_lockout(
    session: AsyncSession,
    settings: IdentitySettings,
    account: Account,
    counted: throttles.Counted,
    now: datetime,
) -> None:
    wait = throttles.wait_seconds(counted.locked_until, now)
    what = (
        "avec le bon mot de passe mais un mauvais second facteur"
        if counted.key.startswith(throttles.FACTOR)
        else "avec un mauvais mot de passe"
    )
    advice = (
        "Votre mot de passe est sans doute connu de quelqu'un d'autre : changez-le dès maintenant"
        if counted.key.startswith(throttles.FACTOR)
        else "Si ce n'était pas vous, rien n'est à faire ; si vous doutez de votre mot de passe, "
        "changez-le"
    )
    await queue_mail(
        session,
        settings,
        to=account.email or "",
        subject="Guichet : tentatives de connexion à votre compte",
        body=(
            f"Bonjour {account.first_name or account.username},\n\n"
            f"Quelqu'un a essayé {counted.failures} fois de se connecter à votre compte "
            f"« {account.username} » {what}, depuis un appareil qui ne s'y était jamais "
            f"connecté. Les connexions depuis de nouveaux appareils attendent "
            f"{duration_text(wait)}, et plus longtemps si les essais continuent. Les appareils "
            "depuis lesquels vous vous êtes déjà connecté ne sont pas bloqués.\n\n"
            f"{advice} : {settings.public_base_url}/forgot-password\n"
        ),
    )
