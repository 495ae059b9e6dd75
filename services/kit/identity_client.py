"""How every process other than identity reaches identity: JWKS for verifying, service tokens."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

from services.kit.auth import TokenVerifier
from services.kit.grpcclient import ServiceTokenSource, create_channel
from services.kit.settings import CommonSettings


@dataclass
class IdentityLink:
    channel: grpc.aio.Channel
    stub: identity_pb2_grpc.IdentityServiceStub
    verifier: TokenVerifier
    tokens: ServiceTokenSource | None

    async def close(self) -> None:
        await self.channel.close()


def connect_identity(settings: CommonSettings) -> IdentityLink:
    """A channel to identity; bootstrap calls (JWKS, service token) go on a bare channel."""
    bare = grpc.aio.insecure_channel(settings.identity_addr)
    bare_stub = identity_pb2_grpc.IdentityServiceStub(bare)
    timeout = settings.grpc_default_timeout

    async def load_jwks() -> str:
        response = await bare_stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=timeout)
        return str(response.jwks_json)

    tokens: ServiceTokenSource | None = None
    client_id, client_secret = settings.service_client_id, settings.service_client_secret
    if client_id and client_secret:

        async def fetch_token() -> tuple[str, int]:
            response = await bare_stub.IssueServiceToken(
                identity_pb2.IssueServiceTokenRequest(
                    client_id=client_id, client_secret=client_secret
                ),
                timeout=timeout,
            )
            return response.access_token, response.expires_in

        tokens = ServiceTokenSource(fetch_token)
    channel = create_channel(settings.identity_addr, default_timeout=timeout, tokens=tokens)
    return IdentityLink(
        channel=channel,
        stub=identity_pb2_grpc.IdentityServiceStub(channel),
        verifier=TokenVerifier(load_jwks),
        tokens=tokens,
    )
