"""What the workshops and associations portals share: both are the membership service's.

The stub dependency of membership, and the schema helpers and enums both portals' models use.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Path
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc
from pydantic import BaseModel, ConfigDict

from services.gateway.rpc import service_stub

MEMBERSHIP_SERVICE = pb.DESCRIPTOR.services_by_name["MembershipService"]
membership_stub = service_stub("membership", membership_pb2_grpc.MembershipServiceStub)
Membership = Annotated[membership_pb2_grpc.MembershipServiceStub, Depends(membership_stub)]

# The path parameters both membership portals name.
WorkshopId = Annotated[uuid.UUID, Path(description="The workshop (identity organisation) id.")]
AssociationId = Annotated[uuid.UUID, Path(description="The association (organisation) id.")]
ResourceId = Annotated[uuid.UUID, Path(description="The resource's id.")]

# membership's limits (services/membership/domain; tests/gateway/test_limits.py compares them).
NAME = 200  # check_text's default
PERSON_NAME = 100
# IANA time zone names (Europe/Paris, America/Montreal); the services check them with zoneinfo.
TIME_ZONE = 64
TEXT = 4000
EMAIL = 320
# Client numbers fit in a JSON number every client reads exactly (2^53 - 1).
MAX_CLIENT_NUMBER = 2**53 - 1
# A code (program, option, course, training type), upper-cased by membership.
CODE_PATTERN = r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{0,31}\s*$"
VIN_PATTERN = r"^\s*[A-HJ-NPR-Za-hj-npr-z0-9]{17}\s*$"
SIRET_PATTERN = r"^[0-9\s.-]{0,20}$"
MAX_OPTIONS = 50


class _Request(BaseModel):
    """Unknown fields are refused: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _time(value: Timestamp, present: bool) -> dt.datetime | None:
    return value.ToDatetime(tzinfo=dt.UTC) if present else None


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _none(value: str) -> str | None:
    return value or None


def _iso(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


class _ProtoEnum(StrEnum):
    """A lower-case string enum mirroring a proto enum `<PREFIX>_<NAME>`."""

    @classmethod
    def _proto(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def _prefix(cls) -> str:
        raise NotImplementedError

    def to_proto(self) -> Any:
        return self._proto().Value(f"{self._prefix()}{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> Any:
        name = cls._proto().Name(value)
        return None if name.endswith("_UNSPECIFIED") else cls[name.removeprefix(cls._prefix())]


class MembershipStatus(_ProtoEnum):
    ACTIVE = "active"
    ENDED = "ended"

    @classmethod
    def _proto(cls) -> Any:
        return pb.MembershipStatus

    @classmethod
    def _prefix(cls) -> str:
        return "MEMBERSHIP_STATUS_"


class OptionChange(_ProtoEnum):
    ADD = "add"
    REMOVE = "remove"

    @classmethod
    def _proto(cls) -> Any:
        return pb.OptionChange

    @classmethod
    def _prefix(cls) -> str:
        return "OPTION_CHANGE_"


class RequestChannel(_ProtoEnum):
    """portal (the workshop itself), email (recorded by the program team); phone is refused."""

    PORTAL = "portal"
    EMAIL = "email"
    PHONE = "phone"

    @classmethod
    def _proto(cls) -> Any:
        return pb.RequestChannel

    @classmethod
    def _prefix(cls) -> str:
        return "REQUEST_CHANNEL_"


class OptionChangeStatus(_ProtoEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def _proto(cls) -> Any:
        return pb.OptionChangeStatus

    @classmethod
    def _prefix(cls) -> str:
        return "OPTION_CHANGE_STATUS_"


class CourseRegistrationStatus(_ProtoEnum):
    REGISTERED = "registered"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ABSENT = "absent"

    @classmethod
    def _proto(cls) -> Any:
        return pb.CourseRegistrationStatus

    @classmethod
    def _prefix(cls) -> str:
        return "COURSE_REGISTRATION_STATUS_"


class CourseRegistrationOutcome(_ProtoEnum):
    """What a registration can be set to: it is registered when made, then ends one of these
    ways (the service refuses any other)."""

    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ABSENT = "absent"

    @classmethod
    def _proto(cls) -> Any:
        return pb.CourseRegistrationStatus

    @classmethod
    def _prefix(cls) -> str:
        return "COURSE_REGISTRATION_STATUS_"


class ClaimStatus(_ProtoEnum):
    """submitted → under_review | rejected | withdrawn; under_review → approved | rejected |
    needs_information; needs_information → under_review | withdrawn; approved → paid."""

    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    NEEDS_INFORMATION = "needs_information"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    WITHDRAWN = "withdrawn"

    @classmethod
    def _proto(cls) -> Any:
        return pb.WarrantyClaimStatus

    @classmethod
    def _prefix(cls) -> str:
        return "WARRANTY_CLAIM_STATUS_"


class RegistrationStatus(_ProtoEnum):
    REGISTERED = "registered"
    VALIDATED = "validated"
    CANCELLED = "cancelled"

    @classmethod
    def _proto(cls) -> Any:
        return pb.RegistrationStatus

    @classmethod
    def _prefix(cls) -> str:
        return "REGISTRATION_STATUS_"


class DuplicateKind(_ProtoEnum):
    CERTAIN = "certain"
    PROBABLE = "probable"

    @classmethod
    def _proto(cls) -> Any:
        return pb.DuplicateKind

    @classmethod
    def _prefix(cls) -> str:
        return "DUPLICATE_KIND_"


class FeeFilter(_ProtoEnum):
    PAID = "paid"
    UNPAID = "unpaid"

    @classmethod
    def _proto(cls) -> Any:
        return pb.FeeFilter

    @classmethod
    def _prefix(cls) -> str:
        return "FEE_FILTER_"


def iso(value: dt.date | None) -> str:
    return _iso(value)
