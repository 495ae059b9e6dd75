"""Two years of a workshop membership's renewals on Temporal's time-skipping test server.

Real identity and membership services (real PostgreSQL, gRPC on port 0), the membership outbox
and signal relays pointing at the time-skipping server, and a worker there running Renewal and
DeliverMail. Months pass in seconds: the anniversary letter reaches the three recipients 30 days
before each renewal date, the option-removal window opens at the renewal date and closes 30 days
later, the workflow continues into the next year, a renewal date changed mid-year moves the next
letter and window, and ending the membership ends the workflow.

`SAVE_RENEWAL_HISTORY=1` records the first year's history into tests/histories/renewal.json for
the replay test; record it again only for a deliberate, versioned change of the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from guichet.membership.v1 import membership_pb2 as pb
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from services.kit.smtpsink import SmtpSink
from services.kit.temporal import MEMBERSHIP
from services.kit.testing import DatabaseServer, skip_time
from services.membership.domain.renewals import add_years
from tests.membership.harness import (
    World,
    days_from_today,
    fails,
    register_search_attributes,
    running_world,
    today,
)
from workflows.contracts.membership import renewal_workflow_id
from workflows.renewal import Renewal, RenewalResult, RenewalStatus

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "renewal.json"


@pytest.fixture
async def skipping_world(
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[World]:
    await register_search_attributes(time_skipping_env.client)
    async with running_world(
        pg, time_skipping_env.client, smtp_sink, identity_temporal=temporal_env.client
    ) as world:
        yield world


async def _status(handle: WorkflowHandle[Renewal, RenewalResult]) -> RenewalStatus:
    return await handle.query(Renewal.status)


async def _phase(
    world: World, handle: WorkflowHandle[Renewal, RenewalResult], phase: str, **expected: object
) -> RenewalStatus:
    async def check() -> RenewalStatus | None:
        try:
            status = await _status(handle)
        except Exception:
            return None
        if status.phase != phase:
            return None
        if any(getattr(status, name) != value for name, value in expected.items()):
            return None
        return status

    result: RenewalStatus = await world.wait(check, within=60, what=f"phase {phase} {expected}")
    return result


async def _window(world: World, workshop_auth: object, workshop_id: str) -> pb.RemovalWindow:
    view = await world.stub.GetWorkshop(
        pb.GetWorkshopRequest(workshop_id=workshop_id), metadata=workshop_auth
    )
    window: pb.RemovalWindow = view.membership.removal_window
    return window


async def test_two_years_of_renewals(
    skipping_world: World, time_skipping_env: WorkflowEnvironment
) -> None:
    world, env = skipping_world, time_skipping_env
    program = await world.program(options=2)
    shop = await world.workshop()
    renewal = today() + timedelta(days=40)
    membership = await world.membership(shop, program, renewal_date=renewal.isoformat(), options=2)
    recipients = [
        membership.workshop.email,
        membership.wholesaler.email,
        membership.distributor.email,
    ]
    handle = env.client.get_workflow_handle_for(Renewal.run, renewal_workflow_id(membership.id))
    first = await _phase(world, handle, "waiting_for_letter", renewal_date=renewal.isoformat())
    first_run = (await handle.describe()).run_id
    assert first.cycle == 0 and first.letters == []
    description = await handle.describe()
    assert description.typed_search_attributes.get(MEMBERSHIP) == membership.id

    # Year 1, 30 days before the renewal date: the letter, once, to the three recipients.
    assert all(world.smtp.to(address) == [] for address in recipients)
    await skip_time(env, timedelta(days=11))
    for address in recipients:
        [letter] = await world.mails(address)
        assert renewal.isoformat() in letter.body
        assert "Garantie main d'œuvre nationale" in letter.body  # the program's benefits
        assert "Option 0" in letter.body and "Option 1" in letter.body  # the options held
    await _phase(world, handle, "waiting_for_renewal", letters=[renewal.isoformat()])

    # Before the renewal date, a removal is refused with the date the window opens.
    refused = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(
                workshop_id=shop.id,
                option_id=program.options[0].id,
                change=pb.OPTION_CHANGE_REMOVE,
                channel=pb.REQUEST_CHANNEL_PORTAL,
            ),
            metadata=shop.auth,
        )
    )
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.reason == "removal_window_closed"
    assert renewal.isoformat() in refused.message

    # At the renewal date the window opens; the renewal date moves to next year.
    await skip_time(env, timedelta(days=30))
    await _phase(world, handle, "window_open")
    window = await _window(world, shop.auth, shop.id)
    next_year = add_years(renewal, 1)
    assert window.open and window.opened_on == renewal.isoformat()
    assert window.closes_on == (renewal + timedelta(days=30)).isoformat()
    assert window.next_opens_on == next_year.isoformat()
    removal = await world.stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(
            workshop_id=shop.id,
            option_id=program.options[0].id,
            change=pb.OPTION_CHANGE_REMOVE,
            channel=pb.REQUEST_CHANNEL_PORTAL,
            note="Nous n'utilisons plus cette option",
        ),
        metadata=shop.auth,
    )
    assert removal.request.status == pb.OPTION_CHANGE_STATUS_PENDING

    # 30 days later the window closes and the workflow continues into year 2.
    await skip_time(env, timedelta(days=30))
    await _phase(world, handle, "waiting_for_letter", cycle=1, renewal_date=next_year.isoformat())
    window = await _window(world, shop.auth, shop.id)
    assert not window.open and window.next_opens_on == next_year.isoformat()
    refused = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(
                workshop_id=shop.id,
                option_id=program.options[1].id,
                change=pb.OPTION_CHANGE_REMOVE,
                channel=pb.REQUEST_CHANNEL_PORTAL,
            ),
            metadata=shop.auth,
        )
    )
    assert refused.reason == "removal_window_closed" and next_year.isoformat() in refused.message

    # The first year's run (timers, letter, window, continue-as-new) replays with today's code.
    history = await env.client.get_workflow_handle(
        renewal_workflow_id(membership.id), run_id=first_run
    ).fetch_history()
    replayed = await Replayer(workflows=[Renewal]).replay_workflow(history)
    assert replayed.replay_failure is None

    # Mid-year, the program team moves the renewal date two months later: the workflow hears
    # it by a signal, and no letter goes at the old date.
    moved = next_year + timedelta(days=61)
    changed = await world.stub.ChangeRenewalDate(
        pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date=moved.isoformat()),
        metadata=world.operator_auth,
    )
    assert changed.membership.renewal_date == moved.isoformat()
    await _phase(world, handle, "waiting_for_letter", cycle=1, renewal_date=moved.isoformat())
    now = (await env.get_current_time()).date()
    await skip_time(env, next_year - timedelta(days=28) - now)
    # A query is answered once the run has taken every event so far (a timer that fired
    # included): past the old letter day, this run scheduled no letter, and none was mailed.
    status: RenewalStatus = await handle.query(Renewal.status)
    assert status.phase == "waiting_for_letter" and status.renewal_date == moved.isoformat()
    history = await handle.fetch_history()
    assert not [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name
        == "membership_send_anniversary_letter"
    ]
    assert all(len(world.smtp.to(address)) == 1 for address in recipients)

    # The letter comes 30 days before the new date, to the three recipients again.
    await skip_time(env, timedelta(days=61))
    for address in recipients:
        letters = await world.mails(address, count=2)
        assert moved.isoformat() in letters[1].body
    await _phase(world, handle, "waiting_for_renewal", letters=[moved.isoformat()])
    await skip_time(env, timedelta(days=30))
    await _phase(world, handle, "window_open")
    window = await _window(world, shop.auth, shop.id)
    assert window.open and window.opened_on == moved.isoformat()

    # Ending the membership ends the workflow and closes the window.
    await world.stub.EndWorkshopMembership(
        pb.EndWorkshopMembershipRequest(workshop_id=shop.id, reason="Fermeture de l'atelier"),
        metadata=world.operator_auth,
    )
    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.ended and result.cycles == 1
    window = await _window(world, shop.auth, shop.id)
    assert not window.open
    assert all(len(world.smtp.to(address)) == 2 for address in recipients)

    # The second year's run (signals, letter, window, end) replays too, and is saved when asked.
    history = await handle.fetch_history()
    replayed = await Replayer(workflows=[Renewal]).replay_workflow(history)
    assert replayed.replay_failure is None
    if os.environ.get("SAVE_RENEWAL_HISTORY"):
        HISTORY.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def test_a_membership_created_late_gets_its_letter_at_once(
    skipping_world: World, time_skipping_env: WorkflowEnvironment
) -> None:
    """Renewal in 10 days: the letter cannot be 30 days early, so it leaves now, once."""
    world, env = skipping_world, time_skipping_env
    program = await world.program(options=1)
    shop = await world.workshop()
    membership = await world.membership(shop, program, renewal_date=days_from_today(10))
    handle = env.client.get_workflow_handle_for(Renewal.run, renewal_workflow_id(membership.id))
    await _phase(world, handle, "waiting_for_renewal", letters=[days_from_today(10)])
    for address in (membership.workshop.email, membership.distributor.email):
        assert len(await world.mails(address)) == 1
