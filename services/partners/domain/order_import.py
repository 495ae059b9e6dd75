"""Importing a store's order history in bulk: COPY into a temporary table, one idempotent insert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import Validator
from services.partners.domain.common import (
    _CODE,
    MAX_PRICE_CENTS,
    _require_ops_admin_or_internal,
    _store_by_id,
    _uuid,
)
from services.partners.models import OrderStatus, RefundFunder
from services.partners.settings import PartnersSettings


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    """One order of an imported history. Times are microseconds since the epoch: a bulk import
    converts them in SQL rather than building 100,000 datetimes in Python."""

    code: str
    status: str
    created_us: int | None
    closed_us: int | None
    total_cents: int
    paid_cents: int
    cancellation_reason: str
    refund_reason: str
    refund_funded_by: str
    customer_name: str
    courier_name: str


_IMPORT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS orders_import (
    store_id uuid, code text, status text, customer_name text, courier_name text,
    currency text, total_cents bigint, paid_cents bigint, cancellation_reason text,
    refund_reason text, refund_funded_by text, created_us bigint, closed_us bigint
) ON COMMIT DELETE ROWS
"""
_IMPORT_COLUMNS = (
    "store_id",
    "code",
    "status",
    "customer_name",
    "courier_name",
    "currency",
    "total_cents",
    "paid_cents",
    "cancellation_reason",
    "refund_reason",
    "refund_funded_by",
    "created_us",
    "closed_us",
)
_IMPORT_INSERT = """
INSERT INTO orders (
    id, store_id, code, status, customer_name, customer_phone, courier_name, courier_phone,
    currency, total_cents, paid_cents, cancellation_reason, refund_reason, refund_funded_by,
    escalation_status, created_at, closed_at, updated_at
)
SELECT
    gen_random_uuid(), store_id, code, status, customer_name, '', courier_name, '',
    currency, total_cents, paid_cents, cancellation_reason, refund_reason, refund_funded_by,
    NULL,
    timestamptz 'epoch' + created_us * interval '1 microsecond',
    timestamptz 'epoch' + closed_us * interval '1 microsecond',
    $1
FROM orders_import
ON CONFLICT (store_id, code) DO NOTHING
"""


async def import_orders(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    orders: Sequence[ImportedOrder],
) -> tuple[int, int]:
    """Bulk import of a store's history (a store joining with its past orders, demo data).

    Rows go through COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING on
    (store_id, code): a re-run imports nothing twice. Returns (imported, skipped).
    """
    _require_ops_admin_or_internal(actor, settings)
    v = Validator()
    parsed_store = _uuid(v, "store_id", store_id)
    v.check(bool(orders), "orders", "is empty")
    v.check(
        len(orders) <= settings.import_max_orders,
        "orders",
        f"at most {settings.import_max_orders} per call",
    )
    statuses = {s.value for s in OrderStatus}
    funders = {f.value for f in RefundFunder}
    latest = int((now + timedelta(minutes=5)).timestamp() * 1_000_000)
    seen: set[str] = set()
    for index, item in enumerate(orders):
        if len(v.violations) >= 20:
            break
        where = f"orders[{index}]"
        if not _CODE.match(item.code):
            v.check(False, f"{where}.code", "must be 1 to 40 letters, digits, '-' or '_'")
        elif item.code in seen:
            v.check(False, f"{where}.code", "appears twice in this batch")
        seen.add(item.code)
        v.check(item.status in statuses, f"{where}.status", "is not an order status")
        if item.created_us is None:
            v.check(False, f"{where}.create_time", "is required")
        elif item.created_us > latest:
            v.check(False, f"{where}.create_time", "is in the future")
        v.check(
            item.paid_cents >= 0 and 0 <= item.total_cents <= MAX_PRICE_CENTS,
            f"{where}.total_cents",
            "amounts must be between 0 and 100000000",
        )
        if item.status == OrderStatus.CANCELLED:
            v.check(bool(item.cancellation_reason), f"{where}.cancellation_reason", "is required")
        if item.status == OrderStatus.REFUNDED:
            v.check(bool(item.refund_reason), f"{where}.refund_reason", "is required")
            v.check(item.refund_funded_by in funders, f"{where}.refund_funded_by", "is required")
            v.check(item.paid_cents > 0, f"{where}.paid_cents", "a refunded order was paid")
    v.raise_if_any()
    assert parsed_store is not None
    store = await _store_by_id(session, parsed_store)
    accepted = OrderStatus.ACCEPTED.value
    records = [
        (
            store.id,
            item.code,
            item.status,
            item.customer_name[:200],
            item.courier_name[:200],
            store.currency,
            item.total_cents,
            item.paid_cents,
            item.cancellation_reason[:200] or None,
            item.refund_reason[:200] or None,
            item.refund_funded_by or None,
            item.created_us,
            # A closed order without its close time: closed when placed, as far as we know.
            item.created_us
            if item.closed_us is None and item.status != accepted
            else item.closed_us,
        )
        for item in orders
    ]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.execute(_IMPORT_TABLE)
    await driver.execute("TRUNCATE orders_import")
    await driver.copy_records_to_table("orders_import", records=records, columns=_IMPORT_COLUMNS)
    status = await driver.execute(_IMPORT_INSERT, now)
    imported = int(str(status).rsplit(" ", 1)[-1])
    return imported, len(records) - imported
