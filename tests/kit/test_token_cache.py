"""The verified-token cache: same answers as verifying again, bounded, gone at expiry."""

from __future__ import annotations

import time

import pytest

from services.kit.auth import TokenVerifier
from services.kit.errors import Unauthenticated
from tests.kit.test_grpc_kit import Keys


def _verifier(keys: Keys, *, cache_size: int = 4096, leeway: float = 5.0) -> TokenVerifier:
    async def load() -> str:
        return keys.jwks()

    return TokenVerifier(load, cache_size=cache_size, leeway=leeway)


async def test_a_token_verified_once_is_answered_from_the_cache() -> None:
    keys = Keys()
    verifier = _verifier(keys)
    token = keys.token()
    first = await verifier.verify(token)
    verifier._keys.clear()  # a second signature check would now fail: the cache answers
    verifier._loaded_at = time.monotonic()
    assert await verifier.verify(token) is first


async def test_a_cached_token_is_refused_once_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = Keys()
    verifier = _verifier(keys, leeway=0.0)
    token = keys.token(exp=int(time.time()) + 30)
    await verifier.verify(token)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 31)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_refused_tokens_are_never_cached() -> None:
    keys, other = Keys(), Keys()
    verifier = _verifier(keys)
    forged = other.token()
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(forged)
    assert not verifier._verified


async def test_the_cache_is_bounded() -> None:
    keys = Keys()
    verifier = _verifier(keys, cache_size=3)
    tokens = [keys.token(sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert list(verifier._verified) == tokens[2:]
