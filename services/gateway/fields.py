"""Field types of the request models: strict, so that the value a client sends is the value the
schema names, never a coercion of another JSON type.

Pydantic's lax mode (which FastAPI's validation of Python objects uses) would take `false` for
the integer 0, `0` for the date 1970-01-01 and `"5"` for 5. In a body the JSON type must be the
schema's: integers and booleans are strict. Dates and times come as text in JSON, in a body and
in a query string alike, so they are strict about their text: ISO 8601, never a number of
seconds (pydantic reads `"0"` as the epoch).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# Examples of dates that must lie ahead: far enough that the spec's examples stay accepted on
# any day (a generator or a fuzzer sends them as they are). The rules that bound how far ahead
# a date may be (a promotion lasts at most 366 days…) are the services' and say so.
FUTURE_DAY = "2099-06-01"
FUTURE_NEXT_DAY = "2099-06-02"
FUTURE_TIME = "2099-06-01T08:30:00+02:00"

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_type", "Input should be a date, YYYY-MM-DD")
    return value


def _iso_datetime(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise PydanticCustomError(
            "datetime_type", "Input should be a date and time, ISO 8601 (2026-04-01T09:30:00Z)"
        )
    return value


Date = Annotated[dt.date, BeforeValidator(_iso_date)]
DateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]


EMAIL_MAX = 320


def _email(value: str) -> str:
    """The services' own test (email-validator, no DNS): an address the gateway lets through is
    one they accept. The text goes on as sent; each service normalises it."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": str(error)}
        ) from None
    return value


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=EMAIL_MAX),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "minLength": 3, "maxLength": EMAIL_MAX}),
]


# Text the services take: no control characters (they refuse them), and, when required, not
# blank (they refuse "" and spaces alike). JSON Schema regexes are ECMA-262's, pydantic's Rust's:
# this pattern means the same in both.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# Long text the services only refuse NUL in.
NO_NUL = r"^[^\x00]*$"
NO_NUL_NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
# Text of several lines: tabs and line breaks allowed, other control characters not.
LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
LINES_NOT_BLANK = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)


# A phone number as the services read it (trimmed): 6 to 32 of digits, spaces, ( ) . -, an
# optional leading +, starting and ending with no space.
PHONE = r"\+?[0-9().-][0-9 ().-]{4,30}[0-9().-]"
PHONE_PATTERN = rf"^\s*{PHONE}\s*$"
OPTIONAL_PHONE_PATTERN = rf"^\s*({PHONE})?\s*$"


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise PydanticCustomError(
                "unique_items", "item {index} is listed twice", {"index": index}
            )
        seen.add(value)
    return values


def unique_ids(max_length: int, example: str, *, min_length: int = 0, **field: Any) -> Any:
    """A list of ids, each once (`uniqueItems`), at most `max_length`."""
    return Field(
        min_length=min_length,
        max_length=max_length,
        examples=[[example]],
        json_schema_extra={"uniqueItems": True},
        **field,
    )


UniqueIds = Annotated[list[uuid.UUID], AfterValidator(_unique)]


def text(
    max_length: int,
    example: str,
    *,
    description: str | None = None,
    pattern: str = NOT_BLANK,
    min_length: int = 1,
) -> Any:
    """A required text field: not blank, at most `max_length` characters, no control character."""
    return Field(
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        examples=[example],
        description=description,
    )


def optional_text(
    max_length: int,
    example: str,
    *,
    description: str | None = None,
    default: Any = None,
    pattern: str = NO_CONTROL,
) -> Any:
    """An optional text field (absent, null or empty: none), no control character."""
    return Field(
        default=default,
        max_length=max_length,
        pattern=pattern,
        examples=[example],
        description=description,
    )
