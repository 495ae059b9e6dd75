"""Identity's organisations, as membership needs them: does this id name a workshop (or an
association), and what is it called. Asked over gRPC with the caller's token (operators) or the
service's own (public calls); answers are cached briefly, since kinds never change."""

from __future__ import annotations

import time
import uuid

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

from services.kit.errors import Unavailable
from services.membership.domain.common import OrganisationInfo

CACHE_SECONDS = 300.0


class IdentityDirectory:
    def __init__(self, stub: identity_pb2_grpc.IdentityServiceStub) -> None:
        self._stub = stub
        self._cache: dict[uuid.UUID, tuple[float, OrganisationInfo]] = {}

    async def organisation(self, organisation_id: uuid.UUID) -> OrganisationInfo | None:
        cached = self._cache.get(organisation_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self._stub.GetOrganisation(
                identity_pb2.GetOrganisationRequest(organisation_id=str(organisation_id))
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable("identity could not be asked about the organisation") from None
        organisation = response.organisation
        kind = identity_pb2.OrganisationKind.Name(organisation.kind)
        info = OrganisationInfo(
            id=organisation_id,
            kind=kind.removeprefix("ORGANISATION_KIND_").lower(),
            name=organisation.name,
            code=organisation.code,
        )
        self._cache[organisation_id] = (time.monotonic() + CACHE_SECONDS, info)
        return info
