# ruff: noqa: RUF003 (look-alike names are what these tests are about)
"""Calendar names compared as people read them (issue #26)."""

from __future__ import annotations

import grpc

from tests.identity.harness import fails, fields, unique
from tests.support.harness import Support


async def test_calendar_names_are_unique_as_people_read_them(support: Support) -> None:
    name = f"Bureau Lyon {unique('')[-6:]}"
    await support.calendar(name=name)
    for look_alike in (name.replace(" ", "\u200b"), name.upper(), f" {name}\u00ad"):
        clash = await fails(support.calendar(name=look_alike))
        assert clash.code == grpc.StatusCode.ALREADY_EXISTS, look_alike
        assert clash.reason == "name_taken"
        assert fields(clash) == {"name"}
    await support.calendar(name=f"Bureau Lyon Préfecture {unique('')[-6:]}")
    mixed = await fails(support.calendar(name="Bure\u0430u Paris"))  # a Cyrillic а
    assert mixed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(mixed) == {"name"}
