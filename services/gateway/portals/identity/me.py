"""The signed-in member's own account."""

from __future__ import annotations

import grpc
from fastapi import APIRouter
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import CurrentCaller, Identity
from services.gateway.openapi import errors
from services.gateway.portals.identity.common import IDENTITY_SERVICE, IdentityStub
from services.gateway.portals.identity.schemas import ProfileBody, User
from services.gateway.problems import problem_from_rpc_error
from services.gateway.rpc import Operations, one, operation_id

router = APIRouter(tags=["me"], generate_unique_id_function=operation_id)
ops = Operations(router, IDENTITY_SERVICE, IdentityStub)


@ops.get(
    "/v1/me",
    rpc="GetMe",
    answer=one(User, "user"),
    summary="The signed-in account",
    responses=errors(401, 403, 404),
)
def get_me() -> pb.GetMeRequest:
    return pb.GetMeRequest()


@router.put(
    "/v1/me/profile",
    summary="Complete or replace one's personal information",
    responses=errors(400, 401, 403, 409),
)
async def put_profile(body: ProfileBody, caller: CurrentCaller, link: Identity) -> User:
    """Identity decides when the profile is complete; the body is flat, the message is not."""
    try:
        response = await link.stub.CompleteProfile(
            pb.CompleteProfileRequest(profile=body.to_proto()), metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as error:
        raise problem_from_rpc_error(error, field_prefix="profile.") from None
    return User.from_proto(response.user)
