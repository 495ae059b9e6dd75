"""The client-groups routes through the real gateway app, to the real groups service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.idempotency import IdempotencyStore
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import connect_identity
from services.kit.testing import wait_until
from tests.groups.harness import World


@pytest.fixture
async def http(world: World, idempotency: IdempotencyStore) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(identity_addr=world.identity_addr, groups_addr=world.groups_addr)
    link = connect_identity(settings)
    app: FastAPI = create_app(settings, identity=link, idempotency=idempotency)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        from services.gateway.rpc import close_channels

        await close_channels(app.state)
        await link.close()


def auth(metadata: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(metadata)


async def test_the_whole_flow_through_the_gateway(world: World, http: httpx.AsyncClient) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 3, accounts=4, names=["Alpha Import", "Bêta", "Gamma"])
    headers = auth(provider.manager_auth)
    base = f"/v1/providers/{provider.id}"
    relationships = await http.get(f"{base}/relationships", headers=headers)
    assert relationships.status_code == 200, relationships.text
    assert len(relationships.json()["items"]) == 3
    available = await http.get(f"{base}/available-clients", params={"q": "beta"}, headers=headers)
    assert [c["name"] for c in available.json()["items"]] == ["Bêta"]
    created = await http.post(
        f"{base}/groups", json={"name": "Importateurs", "client_ids": clients[:2]}, headers=headers
    )
    assert created.status_code == 201, created.text
    group = created.json()
    assert (group["client_count"], group["program_account_count"]) == (2, 8)
    taken = await http.post(
        f"{base}/groups", json={"name": "importateurs", "client_ids": clients[2:]}, headers=headers
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith("application/problem+json")
    assert taken.json()["type"].endswith("/group_name_taken")
    employees = await http.get(f"{base}/employees", headers=headers)
    assert employees.status_code == 200
    editor = provider.employees["editor"]
    assert editor.id in {e["id"] for e in employees.json()["items"]}
    assignment = {"group_id": group["id"], "role": "editor", "employee_ids": [editor.id]}
    summary = await http.post(
        f"{base}/employees/assignments", json={**assignment, "dry_run": True}, headers=headers
    )
    assert summary.status_code == 200, summary.text
    [change] = summary.json()["summary"]["changes"]
    assert (change["role_after"], change["granted"]) == ("editor", 8)
    assert summary.json()["process_requests"] == []
    # Without the word: a rule beyond the schema (the word is optional for a dry run), 422.
    refused = await http.post(f"{base}/employees/assignments", json=assignment, headers=headers)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("confirmation", "confirmation")
    ]
    # Confirmations travel as the `confirmation` query parameter everywhere; a word that is
    # not one of the act's is the schema's refusal (400), before any call.
    wrong_word = await http.post(
        f"{base}/employees/assignments",
        params={"confirmation": "SUPPRIMER"},
        json=assignment,
        headers=headers,
    )
    assert wrong_word.status_code == 400
    assert [e["field"] for e in wrong_word.json()["errors"]] == ["confirmation"]
    # Background work answers 202 with the Location of its process request, like saving a
    # group's changes or deleting it.
    saved = await http.post(
        f"{base}/employees/assignments",
        params={"confirmation": "CONFIRMER"},
        json=assignment,
        headers=headers,
    )
    assert saved.status_code == 202, saved.text
    [request] = saved.json()["process_requests"]
    assert request["status"] == "pending"
    assert request["workflow_id"] == f"delegation/{request['id']}"
    assert saved.headers["location"] == f"{base}/process-requests/{request['id']}"
    followed = await http.get(saved.headers["location"], headers=headers)
    assert followed.status_code == 200 and followed.json()["id"] == request["id"]

    async def completed() -> httpx.Response | None:
        read = await http.get(f"{base}/process-requests/{request['id']}", headers=headers)
        assert read.status_code == 200
        return read if read.json()["status"] == "completed" else None

    read = await wait_until(completed, what=f"process request {request['id']} completed")
    assert (read.json()["done"], read.json()["total"]) == (8, 8)
    # Add a client and rename in one save; preview first.
    changes = {"add_client_ids": clients[2:], "name": "Importateurs QC"}
    preview = await http.post(
        f"{base}/groups/{group['id']}/access-summary", json=changes, headers=headers
    )
    assert preview.status_code == 200
    assert preview.json()["changes"][0]["granted"] == 4
    saved = await http.post(
        f"{base}/groups/{group['id']}/changes",
        params={"confirmation": "CONFIRM"},
        json=changes,
        headers=headers,
    )
    assert saved.status_code == 202, saved.text
    assert saved.json()["group"]["name"] == "Importateurs QC"
    first = saved.json()["process_requests"][0]["id"]
    assert saved.headers["location"] == f"{base}/process-requests/{first}"
    # A rename alone moves no access: nothing in the background, 200 and no Location.
    renamed = await http.post(
        f"{base}/groups/{group['id']}/changes",
        params={"confirmation": "CONFIRMER"},
        json={"name": "Importateurs du Québec"},
        headers=headers,
    )
    assert renamed.status_code == 200, renamed.text
    assert "location" not in renamed.headers
    listed = await http.get(
        f"{base}/process-requests", params={"group_id": group["id"]}, headers=headers
    )
    assert [r["operation"] for r in listed.json()["items"]] == ["add_clients", "assign_employees"]
    members = await http.get(
        f"{base}/groups/{group['id']}/clients", params={"q": "gam"}, headers=headers
    )
    assert [c["name"] for c in members.json()["items"]] == ["Gamma"]
    # Delete: only with SUPPRIMER.
    wrong = await http.delete(f"{base}/groups/{group['id']}", headers=headers)
    assert wrong.status_code == 400
    assert [(e["field"], e["code"]) for e in wrong.json()["errors"]] == [
        ("confirmation", "missing")
    ]
    deleted = await http.delete(
        f"{base}/groups/{group['id']}", params={"confirmation": "SUPPRIMER"}, headers=headers
    )
    assert deleted.status_code == 202
    assert deleted.json()["operation"] == "delete_group"
    assert deleted.headers["location"] == f"{base}/process-requests/{deleted.json()['id']}"
    gone = await http.get(f"{base}/groups/{group['id']}", headers=headers)
    assert gone.status_code == 404


async def test_other_callers_get_403_or_404(world: World, http: httpx.AsyncClient) -> None:
    provider = await world.provider()
    other = await world.provider()
    group = await world.group(provider, await world.clients(provider, 1))
    for headers in (auth(other.manager_auth), auth(world.ops)):
        listed = await http.get(f"/v1/providers/{provider.id}/groups", headers=headers)
        assert listed.status_code == 403
        assert listed.headers["content-type"].startswith("application/problem+json")
        read = await http.get(f"/v1/providers/{provider.id}/groups/{group}", headers=headers)
        assert read.status_code == 404
    anonymous = await http.get(f"/v1/providers/{provider.id}/groups")
    assert anonymous.status_code == 401


async def test_fifty_requests_race_for_one_client(world: World, http: httpx.AsyncClient) -> None:
    """50 saves put one client into 50 different groups at once: one wins, 49 get 409."""
    provider = await world.provider()
    seeds = await world.clients(provider, 50, accounts=1)
    [contested] = await world.clients(provider, 1, accounts=2)
    # The 50 groups are the set-up, not the race: made a few at a time. Fired at once, these
    # calls (no deadline, to the groups server in this process) wait in gRPC core until the
    # server's loop accepts them, and that loop is busy with the calls it took and with the
    # worker's 51 new expiry workflows; gRPC cancels a call left unaccepted for 30 s
    # (`grpc.server_max_unrequested_time_in_server`): one CreateGroup failed CANCELLED at load
    # 10-15. With that limit at 1 s, a burst of 50 fails CANCELLED under two busy loops.
    gate = asyncio.Semaphore(5)

    async def seeded(seed: str) -> str:
        async with gate:
            return await world.group(provider, [seed])

    groups = await asyncio.gather(*(seeded(seed) for seed in seeds))
    headers = auth(provider.manager_auth)

    async def add(group: str) -> httpx.Response:
        return await http.post(
            f"/v1/providers/{provider.id}/groups/{group}/changes",
            params={"confirmation": "CONFIRMER"},
            json={"add_client_ids": [contested]},
            headers=headers,
        )

    answers = await asyncio.gather(*(add(group) for group in groups))
    statuses = sorted(a.status_code for a in answers)
    # Nobody is assigned to these groups, so adding a client moves no access: 200, nothing in
    # the background.
    assert statuses == [200] + [409] * 49, statuses
    assert {a.json()["type"].rsplit("/", 1)[1] for a in answers if a.status_code == 409} == {
        "client_already_grouped"
    }
    # 51 relationships: one page of them all (the default page could leave the contested one
    # on the next, as a clean-clone run found).
    relationships = await http.get(
        f"/v1/providers/{provider.id}/relationships", params={"page_size": 100}, headers=headers
    )
    assert not relationships.json()["next_page_token"]
    grouped = [r for r in relationships.json()["items"] if r["client"]["id"] == contested]
    assert grouped[0]["group_id"] in groups


async def test_each_refused_employee_has_its_own_code_on_the_requests_own_field(
    world: World, http: httpx.AsyncClient
) -> None:
    """One message used to cover three refusals, on a field the request does not have
    (`assign[0].employee_id`): each has its code now, on `employee_ids[i]`."""
    provider = await world.provider()
    other = await world.provider()
    group = await world.group(provider, await world.clients(provider, 1))
    employee_ids = [
        "7e6d5c4b-3a29-4810-9f8e-7d6c5b4a3928",  # nobody
        other.employees["editor"].id,  # another provider's employee
        provider.manager.id,  # the manager, who already sees every client
        provider.employees["editor"].id,  # fine
    ]
    refused = await http.post(
        f"/v1/providers/{provider.id}/employees/assignments",
        json={"group_id": group, "role": "editor", "employee_ids": employee_ids, "dry_run": True},
        headers=auth(provider.manager_auth),
    )
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("employee_ids[0]", "unknown_user"),
        ("employee_ids[1]", "unknown_user"),
        ("employee_ids[2]", "business_account_manager"),
    ]
    duplicated = await http.post(
        f"/v1/providers/{provider.id}/employees/assignments",
        json={
            "group_id": group,
            "role": "editor",
            "employee_ids": [employee_ids[3], employee_ids[3]],
            "dry_run": True,
        },
        headers=auth(provider.manager_auth),
    )
    assert duplicated.status_code == 400
    assert [(e["field"], e["code"]) for e in duplicated.json()["errors"]] == [
        ("employee_ids", "unique_items")
    ]
