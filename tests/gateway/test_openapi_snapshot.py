"""The OpenAPI document stays what clients were built against.

`openapi_before_move.json` is the document as it was before the gateway moved to one package per
portal (issue 15). A move must not change what a client sees: paths, methods, parameters, request
bodies, responses and component schemas are compared with it. Only operationIds and tags, the
one intended change, are ignored. Regenerate the snapshot only for a deliberate API change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

SNAPSHOT = Path(__file__).with_name("openapi_before_move.json")
# What an operation may change without changing the API a client calls.
IGNORED = {"operationId", "tags"}


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
