"""Signing in as an account that has a TOTP second factor, for the demo loader, tests and benches.

ops_admin always needs a second factor (docs/identity.md), so every tool that signs in as the
bootstrap admin answers identity's ticket with a TOTP code computed from the secret it gave
identity (`BOOTSTRAP_ADMIN_TOTP_SECRET`). Identity accepts each 30-second step once per account
(replay), and the step after the current one too (clock drift): `fresh_code` hands out steps this
process has not used yet, so two sign-ins within one step both pass, and a third waits for the
next step instead of failing. Tools should still sign in once and keep the tokens.

Identity keeps the last step used in its own database (per account), so the steps are counted
per `scope`: a test world that starts an identity on a fresh database passes that database's URL,
and its sign-ins never wait for steps another world's identity took (every harness world signs
in as the bootstrap admin with the same secret: the third world within a 30-second step waited up
to 30 s for the next). The default scope is the one identity a process talks to (a stack's).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import grpc
import pyotp
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

STEP_SECONDS = 30
# Deadline of each call to identity.
CALL_SECONDS = 10
_used_steps: dict[tuple[str, str], int] = {}


def _take_code(secret: str, account: str, scope: str = "") -> str | float:
    """A code of the current step or the next one not used yet, else the seconds to wait."""
    totp = pyotp.TOTP(secret)
    key = (scope, account.lower())
    now = time.time()
    step = totp.timecode(datetime.fromtimestamp(now, UTC))
    for candidate in (step, step + 1):
        if candidate > _used_steps.get(key, -1):
            _used_steps[key] = candidate
            return totp.generate_otp(candidate)
    return STEP_SECONDS - now % STEP_SECONDS + 0.05


async def fresh_code(secret: str, account: str, *, scope: str = "") -> str:
    """A TOTP code of a step not yet used by this process for `account` on the identity that
    `scope` names (waits when needed)."""
    for _ in range(3):  # at most one step to wait for; a few in case the clock jumps
        taken = _take_code(secret, account, scope)
        if isinstance(taken, str):
            return taken
        await asyncio.sleep(taken)
    raise RuntimeError(f"no fresh TOTP step for {account}")


def fresh_code_blocking(secret: str, account: str) -> str:
    """`fresh_code` for synchronous callers (the browser tests)."""
    while isinstance(taken := _take_code(secret, account), float):
        time.sleep(taken)
    return taken


async def sign_in(
    stub: identity_pb2_grpc.IdentityServiceStub,
    username: str,
    password: str,
    *,
    totp_secret: str | None,
    client_ip: str = "",
    scope: str = "",
) -> identity_pb2.TokenPair:
    """Password, then (when identity asks) a fresh TOTP code: the pair of a complete sign-in.
    `scope` names the identity behind `stub` when a process talks to several (`fresh_code`)."""
    response: identity_pb2.LoginResponse = await stub.Login(
        identity_pb2.LoginRequest(username=username, password=password, client_ip=client_ip),
        timeout=CALL_SECONDS,
    )
    if not response.HasField("second_factor"):
        return response.tokens
    if totp_secret is None:
        raise RuntimeError(f"{username} needs a second factor and no TOTP secret was given")
    for attempt in range(3):
        code = await fresh_code(totp_secret, username, scope=scope)
        try:
            done: identity_pb2.CompleteSecondFactorResponse = await stub.CompleteSecondFactor(
                identity_pb2.CompleteSecondFactorRequest(
                    ticket=response.second_factor.ticket, code=code, client_ip=client_ip
                ),
                timeout=CALL_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            # Another process used this step for the account: the next one will do.
            if error.code() != grpc.StatusCode.UNAUTHENTICATED or attempt == 2:
                raise
            continue
        return done.tokens
    raise AssertionError("unreachable")
