"""Ed25519 signing keys: generation, key ids, JWK export and JWT signing.

Pure functions over PEM text; choosing which key signs and which are published is a rule and
lives in `domain`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.auth import ALGORITHM


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_x(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return _b64url(raw)


def thumbprint(x: str) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: a stable, collision-free key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def new_key() -> tuple[str, str]:
    """A fresh key as (kid, PKCS#8 PEM)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return thumbprint(_public_x(private_key)), pem


@lru_cache(maxsize=64)
def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("signing key is not Ed25519")
    return key


def public_jwk(kid: str, pem: str) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _public_x(load_private_key(pem)),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def jwks_json(keys: list[tuple[str, str]]) -> str:
    """The JWKS document (RFC 7517) for (kid, pem) pairs."""
    return json.dumps({"keys": [public_jwk(kid, pem) for kid, pem in keys]})


def sign(claims: dict[str, Any], *, kid: str, pem: str) -> str:
    return jwt.encode(claims, load_private_key(pem), algorithm=ALGORITHM, headers={"kid": kid})
