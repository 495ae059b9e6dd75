"""The OpenAPI document is what clients are generated from: a change of it is deliberate.

`openapi.json` beside this file is the document the gateway serves, written by `make proto`
(`python -m services.gateway.openapi`); `make proto-check` and this test fail when it is stale,
so a change of the API shows in review as a diff of that file. Component names are the class
names, unique and readable (a generator drops one of two schemas sharing a title).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

SNAPSHOT = Path(__file__).with_name("openapi.json")


@functools.cache
def _live_document() -> dict[str, Any]:
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    # Through JSON, as a client reads it (tuples become lists, keys strings).
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def test_the_committed_document_is_the_live_one() -> None:
    assert json.loads(SNAPSHOT.read_text()) == _live_document(), "run `make proto`"


def test_component_names_are_unique_readable_class_names() -> None:
    names = list(_live_document()["components"]["schemas"])
    assert [n for n in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", n)] == []
    titles = [s.get("title", n) for n, s in _live_document()["components"]["schemas"].items()]
    assert sorted(t for t in set(titles) if titles.count(t) > 1) == []


# --- operationIds: the method names of every client generated from /openapi.json -------------

OPERATION_ID = re.compile(r"^[a-z][A-Za-z0-9]+$")


def test_every_operation_id_is_a_short_unique_camel_case_name() -> None:
    """FastAPI's default (`create_group_v1_providers__provider_id__groups_post`) fails here."""
    document = _live_document()
    ids = [
        operation.get("operationId", "")
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert [i for i in ids if not OPERATION_ID.match(i)] == []
    assert [i for i in ids if len(i) > 40] == []
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == []


def test_every_operation_has_one_declared_tag() -> None:
    document = _live_document()
    declared = {tag["name"] for tag in document["tags"]}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            tags = operation.get("tags", [])
            assert len(tags) == 1 and tags[0] in declared, (method, path, tags)
