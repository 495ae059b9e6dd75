"""Usernames and passwords: what makes them acceptable, forgot and reset password, the admin's
"re-send password", and the operator's recovery of a forgotten username.

A password never travels by mail: only a one-time reset link, with its sending and use audited.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from services.identity.domain.common import (
    audit,
    check_email,
    check_name,
    check_token_field,
    clean,
    duration_text,
    greeting,
    normalise_email,
    queue_mail,
    uuid_or_raise,
)
from services.identity.domain.links import consume_link, issue_link, recently_sent
from services.identity.domain.roles import is_operator_staff, require_user, user_for_admin
from services.identity.domain.tokens import revoke_refresh_tokens
from services.identity.models import LinkPurpose, LoginThrottle, RefreshToken, User, UserStatus
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, PermissionDenied, Validator

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{3,64}$")
PASSWORD_MIN, PASSWORD_MAX = 12, 128


def username_problems(username: str) -> list[str]:
    """ASCII letters, digits and `._-` only: no look-alike accounts, one lower-case form."""
    if not username.strip():
        return ["is required"]
    if not USERNAME_PATTERN.match(username):
        return ["must be 3 to 64 characters: letters a-z, digits, '.', '_' or '-'"]
    return []


def password_problem_codes(password: str, username: str) -> list[tuple[str, str]]:
    """`password_problems` with each one's code: the lengths are the schema's, the rest beyond."""
    codes = []
    for problem in password_problems(password, username):
        if "at least" in problem:
            codes.append((problem, "string_too_short"))
        elif "at most" in problem:
            codes.append((problem, "string_too_long"))
        else:
            codes.append((problem, "weak_password"))
    return codes


def password_problems(password: str, username: str) -> list[str]:
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        problems.append(f"must be at most {PASSWORD_MAX} characters")
    if username.strip() and username.strip().lower() in password.lower():
        problems.append("must not contain the username")
    elif PASSWORD_MIN <= len(password) <= PASSWORD_MAX and _guessable(password, username):
        problems.append(
            "is too easy to guess (a common password, a keyboard pattern, a repeat or a "
            "sequence): a few unrelated words make a strong one"
        )
    return problems


# zxcvbn's score 3: about 10^8 guesses, "safely unguessable" against an online attacker and a
# moderate offline one. Length alone lets `password1234` and `aaaaaaaaaaaaaaaa` through; NIST
# 800-63B asks to refuse common, expected or repetitive values, and zxcvbn knows which they are.
PASSWORD_MIN_SCORE = 3


# zxcvbn refuses to score past 72 characters (it raises); a passphrase that long is judged on
# its first 72, which already decide whether it is guessable.
ZXCVBN_MAX = 72


def _guessable(password: str, username: str) -> bool:
    # The username and its parts (jean.dupont: jean, dupont) count as known words.
    known = [username, *re.split(r"\W+", username)]
    return int(zxcvbn(password[:ZXCVBN_MAX], user_inputs=known)["score"]) < PASSWORD_MIN_SCORE


async def send_reset(
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    *,
    actor: Principal | None,
    welcome: bool = False,
) -> None:
    ttl = settings.welcome_link_ttl_seconds if welcome else settings.reset_link_ttl_seconds
    token = await issue_link(
        session, now=now, user=user, purpose=LinkPurpose.PASSWORD_RESET, ttl_seconds=ttl
    )
    assert user.email is not None
    link = f"{settings.public_base_url}/reset-password?token={token}"
    if welcome:
        subject = "Votre compte Guichet est prêt"
        intro = "Un compte Guichet a été créé pour vous. Choisissez votre mot de passe ici"
    else:
        subject = "Choisissez un nouveau mot de passe"
        intro = "Pour choisir un nouveau mot de passe, ouvrez ce lien"
    await queue_mail(
        session,
        settings,
        to=user.email,
        subject=subject,
        kind="welcome" if welcome else "password_reset",
        username=user.username,
        body=(
            f"{greeting(user)}\n\n"
            f"{intro} (valable {duration_text(ttl)}) :\n{link}\n\n"
            f"Votre identifiant : {user.username}\n\n"
            "Ce lien ne sert qu'une fois. Si vous n'êtes pas à l'origine de cette demande, "
            "ignorez ce message : votre mot de passe actuel reste valable.\n"
        ),
    )
    audit(
        session=session,
        now=now,
        event="password_reset.sent",
        actor=actor,
        user_id=user.id,
        email=user.email,
        expires_at=(now + timedelta(seconds=ttl)).isoformat(),
        welcome="true" if welcome else None,
    )


async def request_password_reset(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, login: str
) -> None:
    """Forgot password, by username or e-mail: mails links, answers the same in every case."""
    v = Validator()
    v.require("login", login)
    v.check(len(login) <= 320, "login", "must be at most 320 characters")
    v.raise_if_any()
    login = login.strip()
    if "@" in login:
        try:
            address = normalise_email(login)
        except ValueError:
            return
        query = select(User).where(func.lower(User.email) == address.lower()).limit(20)
    else:
        query = select(User).where(func.lower(User.username) == login.lower())
    for user in (await session.execute(query)).scalars().all():
        if not user.email or user.status == UserStatus.DISABLED:
            continue
        if await recently_sent(session, settings, now, user, LinkPurpose.PASSWORD_RESET):
            continue
        await send_reset(session, settings, now, user, actor=None)


async def reset_password(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    now: datetime,
    token: str,
    new_password: str,
) -> User:
    """Uses a reset link: new password, every session revoked, lockout cleared."""
    v = Validator()
    check_token_field(v, "token", token)
    v.require("new_password", new_password)
    v.raise_if_any()
    link, user = await consume_link(
        session, now=now, token=token, purpose=LinkPurpose.PASSWORD_RESET
    )
    if user.status == UserStatus.DISABLED:
        raise FailedPrecondition("this account is disabled", reason="account_disabled")
    for problem, code in password_problem_codes(new_password, user.username):
        v.check(False, "new_password", problem, code=code)
    v.raise_if_any()
    user.password_hash = await passwords.hash(new_password)
    if user.email is not None and user.email.lower() == link.email.lower():
        user.email_verified = True  # the link reached that mailbox: its owner is proven
    user.updated_at = now
    await revoke_refresh_tokens(session, now, RefreshToken.user_id == user.id, "password_reset")
    await session.execute(
        delete(LoginThrottle).where(LoginThrottle.username_key == user.username.lower())
    )
    audit(session=session, now=now, event="password_reset.used", actor=None, user_id=user.id)
    return user


async def send_password_reset(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    user_id: str,
) -> None:
    """The admin's "re-send password": a reset link by mail, never a password."""
    user, _ = await user_for_admin(session, actor, uuid_or_raise("user_id", user_id), lock=True)
    if not user.email:
        raise FailedPrecondition(
            "this account has no e-mail address; set one first", reason="email_missing"
        )
    if user.status == UserStatus.DISABLED:
        raise FailedPrecondition("this account is disabled", reason="account_disabled")
    await send_reset(session, settings, now, user, actor=actor, welcome=user.password_hash is None)


async def recover_username(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    actor: Principal | None,
    now: datetime,
    email: str,
    verification_reference: str,
) -> None:
    """Operator staff, after checking the person's identity, mail the usernames of an address."""
    actor = require_user(actor)
    if not is_operator_staff(actor):
        raise PermissionDenied("only operator staff may recover a username")
    v = Validator()
    address = check_email(v, "email", email, required=True)
    reference = clean(verification_reference)
    check_name(v, "verification_reference", reference, 200)
    v.raise_if_any()
    assert address is not None
    users = (
        (
            await session.execute(
                select(User)
                .where(func.lower(User.email) == address.lower())
                .order_by(User.created_at)
                .limit(20)
            )
        )
        .scalars()
        .all()
    )
    if not users:
        audit(
            session=session,
            now=now,
            event="username.recovered",
            actor=actor,
            user_id=None,
            email=address,
            verification_reference=reference,
            accounts="0",
        )
        return
    # One mail per stored address (addresses match case-insensitively, and are mailed as stored).
    by_address: dict[str, list[User]] = {}
    for user in users:
        assert user.email is not None
        by_address.setdefault(user.email, []).append(user)
    for recipient, owners in by_address.items():
        listing = "\n".join(f"  - {owner.username}" for owner in owners)
        await queue_mail(
            session,
            settings,
            to=recipient,
            subject="Votre identifiant Guichet",
            kind="username_reminder",
            body=(
                "Bonjour,\n\nÀ votre demande, voici le ou les identifiants associés à cette "
                f"adresse :\n{listing}\n\n"
                "Si vous n'êtes pas à l'origine de cette demande, contactez le support.\n"
            ),
        )
    for user in users:
        audit(
            session=session,
            now=now,
            event="username.recovered",
            actor=actor,
            user_id=user.id,
            email=address,
            verification_reference=reference,
        )
