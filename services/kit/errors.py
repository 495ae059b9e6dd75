"""Domain errors, and the one place that turns them into gRPC status with details.

Domain code raises these; the server interceptor (`kit.grpcserver`) maps them, and the gateway maps
the gRPC status to RFC 9457 problem details. Field violations travel as `google.rpc.BadRequest`,
each with a stable machine `reason` (its code: the gateway's `errors[].code`, which clients and the
portal's translations switch on) beside the English description.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# The code of a violation that names none: a rule without a code of its own yet.
INVALID = "invalid"
# The code of a missing or blank required value (pydantic's name for it, so that one text fits
# the gateway's refusal and the service's).
MISSING = "missing"

# (field, description) or (field, description, code)
ViolationLike = tuple[str, str] | tuple[str, str, str]


def _split(items: Iterable[ViolationLike]) -> tuple[list[tuple[str, str]], list[str]]:
    pairs: list[tuple[str, str]] = []
    codes: list[str] = []
    for item in items:
        pairs.append((item[0], item[1]))
        codes.append(item[2] if len(item) == 3 else INVALID)
    return pairs, codes


class DomainError(Exception):
    """A rule refused the request. `message` is safe to show to the caller."""

    code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    reason: str = "failed_precondition"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: Iterable[ViolationLike] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        # The fields at fault, for any status (e.g. ALREADY_EXISTS naming the taken `username`),
        # and beside them (same order) each one's machine code.
        self.violations, self.codes = _split(violations)
        if reason is not None:
            self.reason = reason

    def coded(self) -> Iterator[tuple[str, str, str]]:
        """(field, description, code) of every violation."""
        for (field, description), code in zip(self.violations, self.codes, strict=True):
            yield field, description, code


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "invalid_argument"

    def __init__(
        self,
        violations: Mapping[str, str] | Iterable[ViolationLike],
        message: str | None = None,
    ) -> None:
        items: list[ViolationLike] = (
            list(violations.items()) if isinstance(violations, Mapping) else list(violations)
        )
        summary = message or "; ".join(f"{item[0]}: {item[1]}" for item in items)
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
    """Collects field violations so that a request reports every bad field at once.

    Each violation carries a code (`code=`): pydantic's error type where the rule is one JSON
    Schema states (`string_too_long`, `string_pattern_mismatch`…), else a name of the rule's own
    (`in_the_past`, `vin_format`). The gateway answers the first kind 400 and the second 422."""

    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []
        self.codes: list[str] = []

    def add(self, field: str, description: str, code: str = INVALID) -> None:
        self.violations.append((field, description))
        self.codes.append(code)

    def require(
        self, field: str, value: object, description: str = "is required", *, code: str = MISSING
    ) -> None:
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            self.add(field, description, code)

    def check(self, condition: bool, field: str, description: str, *, code: str = INVALID) -> None:
        if not condition:
            self.add(field, description, code)

    def extend(self, violations: Iterable[ViolationLike]) -> None:
        pairs, codes = _split(violations)
        self.violations.extend(pairs)
        self.codes.extend(codes)

    def has(self, field: str) -> bool:
        return any(name == field for name, _ in self.violations)

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(
                [(f, d, c) for (f, d), c in zip(self.violations, self.codes, strict=True)]
            )


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
                    field=_clip(f, 200), description=_clip(d, 200), reason=_clip(c, 64)
                )
                for f, d, c in list(error.coded())[:MAX_VIOLATIONS]
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
        # Each violation's code (FieldViolation.reason), in the order of `violations`.
        self.codes: list[str] = [INVALID] * len(self.violations)
        self.retry_after_seconds = retry_after_seconds

    def coded(self) -> Iterator[tuple[str, str, str]]:
        """(field, description, code) of every violation."""
        for (field, description), code in zip(self.violations, self.codes, strict=True):
            yield field, description, code

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
                    problem.codes = [v.reason or INVALID for v in bad_request.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    problem.reason = info.reason
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    problem.retry_after_seconds = retry.retry_delay.seconds
        return problem
