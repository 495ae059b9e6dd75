"""The OpenAPI document stays what clients were built against.

`openapi_before_move.json` is the document as it was before the gateway moved to one package per
portal (issue 15). A move must not change what a client sees: paths, methods, parameters, request
bodies, responses and component schemas are compared with it. Only operationIds and tags, the
one intended change, are ignored. Regenerate the snapshot only for a deliberate API change.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

SNAPSHOT = Path(__file__).with_name("openapi_before_move.json")
# What an operation may change without changing the API a client calls.
IGNORED = {"operationId", "tags"}


@functools.cache
def _live_document() -> dict[str, Any]:
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    # Through JSON, as a client reads it (tuples become lists, keys strings).
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): {k: v for k, v in operation.items() if k not in IGNORED}
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_paths_and_methods_are_unchanged() -> None:
    before = _operations(json.loads(SNAPSHOT.read_text()))
    live = _operations(_live_document())
    assert sorted(live) == sorted(before)


def test_every_operation_is_unchanged_but_for_its_id_and_tags() -> None:
    before = _operations(json.loads(SNAPSHOT.read_text()))
    live = _operations(_live_document())
    changed = [key for key in sorted(before) if key in live and live[key] != before[key]]
    assert not changed, changed
    for key in ("parameters", "requestBody", "responses"):
        assert {k: v.get(key) for k, v in live.items()} == {
            k: v.get(key) for k, v in before.items()
        }


def test_component_schemas_are_unchanged() -> None:
    before = json.loads(SNAPSHOT.read_text())["components"]
    live = _live_document()["components"]
    assert sorted(live["schemas"]) == sorted(before["schemas"])
    changed = [n for n in sorted(before["schemas"]) if live["schemas"][n] != before["schemas"][n]]
    assert not changed, changed
    assert live == before


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
