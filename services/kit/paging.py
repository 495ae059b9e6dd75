"""Keyset pagination, the same for every service: an opaque token naming the list, the filters
it was read with, and the sort key of the last item returned.

A token from another list, or read with other filters, is refused as INVALID_ARGUMENT on
`page.page_token`: its key would not be a position in this list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import tuple_

from services.kit.errors import Validator

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


@dataclass(frozen=True)
class PageQuery:
    size: int
    # The sort key of the last item of the previous page, already converted to column types.
    after: list[Any] | None


def parse_page(
    v: Validator,
    list_name: str,
    page_size: int,
    page_token: str,
    convert: Sequence[Callable[[str], Any]],
    filters: str = "",
) -> PageQuery:
    """Checks the page request, collecting violations in `v`."""
    v.check(
        0 <= page_size <= MAX_PAGE_SIZE,
        "page.page_size",
        f"must be between 0 and {MAX_PAGE_SIZE}",
        code="less_than_equal",
    )
    after: list[Any] | None = None
    if page_token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            if decoded["l"] != list_name or decoded.get("f", "") != filters:
                raise ValueError(list_name)
            if len(decoded["a"]) != len(convert):
                raise ValueError(list_name)
            after = [conv(str(raw)) for conv, raw in zip(convert, decoded["a"], strict=True)]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            # Any text fits the schema of an opaque token: a rule beyond it (422).
            v.check(False, "page.page_token", "is not a page token of this list", code="page_token")
    return PageQuery(size=page_size or DEFAULT_PAGE_SIZE, after=after)


def page_token(list_name: str, key: Sequence[object], filters: str = "") -> str:
    """The opaque token of the page after `key`."""
    payload = json.dumps({"l": list_name, "f": filters, "a": [str(part) for part in key]})
    return base64.urlsafe_b64encode(payload.encode()).decode()


def keyset_after(page: PageQuery, columns: Sequence[Any], *, descending: bool = False) -> list[Any]:
    """The keyset condition: rows strictly after (or before, descending) the previous page."""
    if page.after is None:
        return []
    if descending:
        return [tuple_(*columns) < tuple_(*page.after)]
    return [tuple_(*columns) > tuple_(*page.after)]
