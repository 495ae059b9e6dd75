"""Identity as the domain's `Directory` of employees: people read over gRPC with the caller's own
token, so that identity applies its own rules about who may see whom.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import grpc
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

from services.groups.domain.employees import Person
from services.kit.errors import Unavailable

KIND_CACHE_SECONDS = 300.0


def _person(user: identity_pb2.User) -> Person:
    memberships: dict[str, set[str]] = {}
    for m in user.memberships:
        memberships.setdefault(m.organisation_id, set()).add(m.role)
    return Person(
        id=uuid.UUID(user.id),
        username=user.username,
        first_name=user.profile.first_name,
        last_name=user.profile.last_name,
        active=user.status == identity_pb2.USER_STATUS_ACTIVE,
        memberships={org: frozenset(roles) for org, roles in memberships.items()},
    )


class IdentityDirectory:
    """Reads people from identity with the caller's own token (the manager's), so identity
    applies its own rules about who may see whom."""

    def __init__(self, stub: identity_pb2_grpc.IdentityServiceStub) -> None:
        self._stub = stub
        self._kinds: dict[uuid.UUID, tuple[float, str]] = {}

    async def organisation_kind(self, organisation_id: uuid.UUID) -> str | None:
        """The kind of the organisation (`service_provider`…), None when identity knows no
        such id. Kinds never change, so a positive answer is kept a few minutes."""
        cached = self._kinds.get(organisation_id)
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
        kind = identity_pb2.OrganisationKind.Name(response.organisation.kind)
        found = kind.removeprefix("ORGANISATION_KIND_").lower()
        self._kinds[organisation_id] = (time.monotonic() + KIND_CACHE_SECONDS, found)
        return found

    async def _one(self, user_id: uuid.UUID) -> Person | None:
        try:
            response = await self._stub.GetUser(identity_pb2.GetUserRequest(user_id=str(user_id)))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                return None
            raise
        return _person(response.user)

    async def people(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Person]:
        found = await asyncio.gather(*(self._one(user_id) for user_id in user_ids))
        return {person.id: person for person in found if person is not None}

    async def members(
        self, provider_id: uuid.UUID, roles: Sequence[str], page_size: int, page_token: str
    ) -> tuple[list[Person], str]:
        response = await self._stub.ListOrganisationMembers(
            identity_pb2.ListOrganisationMembersRequest(
                organisation_id=str(provider_id),
                roles=list(roles),
                page=common_pb2.PageRequest(page_size=page_size, page_token=page_token),
            )
        )
        return [_person(u) for u in response.users], response.page.next_page_token
