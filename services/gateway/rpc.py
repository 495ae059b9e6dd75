"""The one shape of most gateway operations: parse the request, make one gRPC call, map the answer.

A portal's routes module declares each such operation as a small function that turns the
validated HTTP input into the gRPC request; `Operations` wraps it into the FastAPI endpoint that
authenticates the caller, calls the named method with the caller's metadata and maps the answer
with `one(...)` or `page_of(...)`. Every operation keeps its own path, operationId, parameters,
request and response model, examples and problem responses in the OpenAPI document. Operations
of another shape (uploads, public calls, several calls) stay ordinary FastAPI routes.

Also here, because every portal needs them: the per-service channel made on first use, paging
parameters, and the operationId rule (`operation_id`: the endpoint's name in camelCase).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, Protocol, Self, TypeVar

import grpc
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from guichet.common.v1 import common_pb2
from pydantic import BaseModel

from services.gateway.auth import CurrentCaller
from services.gateway.problems import problem_from_rpc_error
from services.kit.grpcclient import create_channel

StubT = TypeVar("StubT")
ModelT = TypeVar("ModelT", bound=BaseModel)
ParseT = TypeVar("ParseT", bound=Callable[..., Message])

# The services reached over a channel of their own (identity comes with the app's IdentityLink).
CHANNELED_SERVICES = ("groups", "support", "membership", "partners")


def operation_id(route: APIRoute) -> str:
    """`create_group` → `createGroup`: short and stable, the method name of generated clients."""
    head, *rest = route.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def service_stub(
    service: str, stub_type: Callable[[grpc.aio.Channel], StubT]
) -> Callable[[Request], Awaitable[StubT]]:
    """A dependency answering the stub of `service`, its channel made on first use.

    Async on purpose: a grpc.aio channel is made on the event loop, not in FastAPI's threadpool
    where sync dependencies run. The channel is kept at `app.state.<service>_channel` for
    `close_channels`; deadlines come from the gateway's settings."""

    async def stub(request: Request) -> StubT:
        state = request.app.state
        made: StubT | None = getattr(state, service, None)
        if made is None:
            settings = state.settings
            channel = create_channel(
                getattr(settings, f"{service}_addr"),
                default_timeout=settings.grpc_default_timeout,
            )
            setattr(state, f"{service}_channel", channel)
            made = stub_type(channel)
            setattr(state, service, made)
        return made

    stub.__name__ = f"{service}_stub"
    return stub


async def close_channels(state: object) -> None:
    """Closes every service channel made so far (the app's lifespan calls it at shutdown)."""
    for service in CHANNELED_SERVICES:
        channel: grpc.aio.Channel | None = getattr(state, f"{service}_channel", None)
        if channel is not None:
            await channel.close()


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def next_token(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


class FromProto(Protocol):
    """A response model built from its proto message."""

    @classmethod
    def from_proto(cls, message: Any, /) -> Self: ...


FromProtoT = TypeVar("FromProtoT", bound=FromProto)


@dataclass(frozen=True)
class Answer(Generic[ModelT]):
    """How a gRPC response becomes the operation's response model (also its OpenAPI schema)."""

    model: type[ModelT]
    build: Callable[[Any], ModelT]


def one(model: type[FromProtoT], field: str | None = None) -> Answer[Any]:
    """The model of `response.<field>` (of the whole response without a field)."""

    def build(response: Any) -> FromProtoT:
        return model.from_proto(getattr(response, field) if field else response)

    return Answer(model=model, build=build)


def page_of(page: type[ModelT], item: type[FromProto], field: str) -> Answer[ModelT]:
    """A page model of `response.<field>`'s items and the response's next page token."""

    def build(response: Any) -> ModelT:
        return page(
            items=[item.from_proto(each) for each in getattr(response, field)],
            next_page_token=next_token(response.page),
        )

    return Answer(model=page, build=build)


# (the operation's parameters, its answer) → the path of the process request carrying the work.
Locate = Callable[[dict[str, Any], Any], str | None]


def background(response: Response, location: str | None) -> None:
    """Background work's answer: 202 with `Location` naming the process request that carries
    it on; 200 when the change needed none (nothing left to do in the background)."""
    if location is None:
        response.status_code = 200
    else:
        response.status_code = 202
        response.headers["Location"] = location


def process_request_path(provider_id: object, process_request_id: object) -> str:
    return f"/v1/providers/{provider_id}/process-requests/{process_request_id}"


class Operations:
    """Registers one-call operations of one gRPC service on a portal's router."""

    def __init__(self, router: APIRouter, service: ServiceDescriptor, stub: Any) -> None:
        """`stub`: the `Annotated[Stub, Depends(...)]` that answers the service's stub."""
        self.router = router
        self.service = service
        self.stub = stub

    def get(self, path: str, **route: Any) -> Callable[[ParseT], ParseT]:
        return self._operation("GET", path, **route)

    def post(self, path: str, **route: Any) -> Callable[[ParseT], ParseT]:
        return self._operation("POST", path, **route)

    def put(self, path: str, **route: Any) -> Callable[[ParseT], ParseT]:
        return self._operation("PUT", path, **route)

    def delete(self, path: str, **route: Any) -> Callable[[ParseT], ParseT]:
        return self._operation("DELETE", path, **route)

    def _operation(
        self,
        method: str,
        path: str,
        *,
        rpc: str,
        answer: Answer[Any],
        location: Locate | None = None,
        fields: dict[str, str] | None = None,
        **route: Any,
    ) -> Callable[[ParseT], ParseT]:
        """`rpc`: the gRPC method; `route`: what `APIRouter.add_api_route` takes (summary,
        status_code, responses...). The decorated function builds the gRPC request from the
        operation's path, query and body parameters. `location`: for background work (202),
        the path of the process request the answer names (see `background`). `fields`: the
        service's field names that this request calls otherwise (`reactivate_time` →
        `reactivate_at`), so that errors name the request's own fields."""
        if rpc not in self.service.methods_by_name:
            raise ValueError(f"{self.service.full_name} has no method {rpc}")

        def register(parse: ParseT) -> ParseT:
            self.router.add_api_route(
                path,
                self._endpoint(parse, rpc, answer, location, fields or {}),
                methods=[method],
                response_model=answer.model,
                **route,
            )
            return parse

        return register

    def _endpoint(
        self,
        parse: Callable[..., Message],
        rpc: str,
        answer: Answer[Any],
        location: Locate | None,
        fields: dict[str, str],
    ) -> Callable[..., Awaitable[Any]]:
        async def endpoint(caller: Any, stub: Any, response: Response, **params: Any) -> Any:
            try:
                reply = await getattr(stub, rpc)(parse(**params), metadata=caller.metadata)
            except grpc.aio.AioRpcError as error:
                if not fields:
                    raise
                raise problem_from_rpc_error(error, rename=lambda n: fields.get(n, n)) from None
            built = answer.build(reply)
            if location is not None:
                background(response, location(params, built))
            return built

        signature = inspect.signature(parse, eval_str=True)
        own = list(signature.parameters.values())
        if {"caller", "stub", "response"} & {p.name for p in own}:
            raise ValueError(f"{parse.__name__}: `caller`, `stub`, `response` are the operation's")
        # The caller first, as in a hand-written route: a 401 comes before anything else.
        edge = [
            inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=CurrentCaller),
            inspect.Parameter("stub", inspect.Parameter.KEYWORD_ONLY, annotation=self.stub),
            inspect.Parameter("response", inspect.Parameter.KEYWORD_ONLY, annotation=Response),
        ]
        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=edge + keyword_only, return_annotation=answer.model
        )
        endpoint.__name__ = parse.__name__
        endpoint.__qualname__ = parse.__qualname__
        endpoint.__doc__ = parse.__doc__
        endpoint.__module__ = parse.__module__
        return endpoint


# Confirmations travel one way everywhere: the `confirmation` query parameter (DELETE has no
# body), one of the words of the act, in French or English (docs/gateway.md, "Conventions").
DeleteConfirmation = Annotated[
    Literal["SUPPRIMER", "DELETE"],
    Query(description="SUPPRIMER (or DELETE): the deletion cannot be undone."),
]
ChangeConfirmation = Annotated[
    Literal["CONFIRMER", "CONFIRM"] | None,
    Query(
        description="CONFIRMER (or CONFIRM): required to save (422 `confirmation` without it), "
        "not for a dry run."
    ),
]
