"""What the identity routes share: identity's stub, taken from the app's IdentityLink."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

from services.gateway.auth import Identity

IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"]


async def identity_stub(link: Identity) -> identity_pb2_grpc.IdentityServiceStub:
    """The link's stub (async: nothing to run in FastAPI's threadpool)."""
    return link.stub


IdentityStub = Annotated[identity_pb2_grpc.IdentityServiceStub, Depends(identity_stub)]
