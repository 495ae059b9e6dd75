"""Domain errors, and the one place that turns them into gRPC status with details.

Domain code raises these; the server interceptor (`kit.grpcserver`) maps them, and the gateway maps
the gRPC status to RFC 9457 problem details. Field violations travel as `google.rpc.BadRequest`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class DomainError(Exception):
    """A rule refused the request. `message` is safe to show to the caller."""

    code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    reason: str = "failed_precondition"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        # The fields at fault, for any status (e.g. ALREADY_EXISTS naming the taken `username`).
        self.violations: list[tuple[str, str]] = list(violations)
        if reason is not None:
            self.reason = reason


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "invalid_argument"

    def __init__(
        self,
        violations: Mapping[str, str] | Iterable[tuple[str, str]],
        message: str | None = None,
    ) -> None:
        items = list(violations.items()) if isinstance(violations, Mapping) else list(violations)
        summary = message or "; ".join(f"{field}: {why}" for field, why in items)
        super().__init__(summary or "invalid request", violations=items)


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "not_found"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "already_exists"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "failed_precondition"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "permission_denied"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "unauthenticated"


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "resource_exhausted"

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "unavailable"


class Validator:
    """Collects field violations so that a request reports every bad field at once."""

    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def require(self, field: str, value: object, description: str = "is required") -> None:
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            self.violations.append((field, description))

    def check(self, condition: bool, field: str, description: str) -> None:
        if not condition:
            self.violations.append((field, description))

    def has(self, field: str) -> bool:
        return any(name == field for name, _ in self.violations)

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)


# Status details travel in trailing metadata, which gRPC caps (8 KiB by default): beyond that the
# caller sees RESOURCE_EXHAUSTED instead of the real answer. A request with thousands of bad
# fields reports the first ones, which is what a person can act on anyway.
MAX_VIOLATIONS = 50
MAX_MESSAGE = 500


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_status(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error: code, message, and typed details."""
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain="guichet")
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_clip(f, 200), description=_clip(d, 200)
                )
                for f, d in error.violations[:MAX_VIOLATIONS]
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    if isinstance(error, ResourceExhausted) and error.retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.seconds = error.retry_after_seconds
        packed = any_pb2.Any()
        packed.Pack(retry)
        details.append(packed)
    return status_pb2.Status(
        code=error.code.value[0], message=_clip(error.message, MAX_MESSAGE), details=details
    )


def to_grpc_status(error: DomainError) -> grpc.Status:
    return rpc_status.to_status(to_status(error))


class RemoteProblem:
    """A failed gRPC call as a caller sees it: status, message and the typed details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        violations: list[tuple[str, str]] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = violations or []
        self.retry_after_seconds = retry_after_seconds

    @classmethod
    def from_rpc_error(cls, error: grpc.aio.AioRpcError) -> RemoteProblem:
        problem = cls(error.code(), error.details() or "")
        for key, value in error.trailing_metadata() or ():
            if key != "grpc-status-details-bin" or not isinstance(value, bytes):
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    problem.violations = [
                        (v.field, v.description) for v in bad_request.field_violations
                    ]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    problem.reason = info.reason
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    problem.retry_after_seconds = retry.retry_delay.seconds
        return problem
