"""What every part of the membership servicer shares: its dependencies, the relays it wakes
after a commit, and the small mappings between domain values and proto fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.clock import Clock, system_clock
from services.kit.outbox import OutboxRelay
from services.membership.domain.common import Directory
from services.membership.duplicate_refresher import DuplicateRefresher
from services.membership.models import MembershipStatus
from services.membership.settings import MembershipSettings
from services.membership.signals import RenewalSignalRelay

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)


MEMBERSHIP_STATUS = {
    MembershipStatus.ACTIVE: pb.MEMBERSHIP_STATUS_ACTIVE,
    MembershipStatus.ENDED: pb.MEMBERSHIP_STATUS_ENDED,
}


def name_of(value: int, table: dict[Any, Any]) -> str:
    """The domain's name for a proto enum value: "" when unspecified, a non-name when unknown."""
    if value == 0:
        return ""
    for name, proto in table.items():
        if proto == value:
            return str(name)
    return f"#{value}"


def proto_time(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def proto_day(value: date | None) -> str:
    return value.isoformat() if value else ""


def proto_page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


class ServicerBase(membership_pb2_grpc.MembershipServiceServicer):
    """The dependencies every group of RPCs uses; `MembershipServicer` combines the groups."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: MembershipSettings,
        directory: Directory,
        relay: OutboxRelay | None,
        signals: RenewalSignalRelay | None,
        clock: Clock = system_clock,
        duplicates: DuplicateRefresher | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._directory = directory
        self._relay = relay
        self._signals = signals
        self._clock = clock
        self._duplicates = duplicates

    def _enqueued(self) -> None:
        """After a commit that may have recorded mail or a workflow start."""
        if self._relay is not None:
            self._relay.wake()

    def _records_changed(self) -> None:
        """After a commit that may have changed client records: the duplicate report follows."""
        if self._duplicates is not None:
            self._duplicates.wake()

    def _signalled(self) -> None:
        if self._signals is not None:
            self._signals.wake()
