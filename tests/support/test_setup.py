"""Calendars, plans, contracts and categories: who may set them up, and what is refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from guichet.support.v1 import support_pb2 as pb
from sqlalchemy import Connection, inspect

from services.kit.db import alembic_config, create_engine, upgrade
from services.kit.mail import new_sealing_key
from services.kit.testing import DatabaseServer
from services.support.models import Base
from services.support.servicer import SPEC
from services.support.settings import SupportSettings
from tests.identity.harness import ASSOCIATION, DELIVERY_PARTNER, fails, fields, unique
from tests.support.harness import OFFICE, Support


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models_and_go_down_and_up(pg: DatabaseServer) -> None:
    url = await pg.new_database("support_schema")
    await upgrade(SPEC.migrations_dir, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            indexes = await connection.run_sync(
                lambda sync: {i["name"]: i for i in inspect(sync).get_indexes("sla_events")}
            )
        assert indexes["uq_sla_events_threshold"]["unique"]
        config = alembic_config(SPEC.migrations_dir, url)
        await asyncio.to_thread(command.downgrade, config, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(SPEC.migrations_dir, url)
    finally:
        await engine.dispose()


def test_settings_refuse_a_bad_sealing_key_and_default_to_port_50053() -> None:
    with pytest.raises(ValueError, match="mail_sealing_key"):
        SupportSettings(database_url="postgresql://x@h/support", mail_sealing_key="short")
    settings = SupportSettings(
        database_url="postgresql://x@h/support", mail_sealing_key=new_sealing_key()
    )
    assert settings.grpc_port == 50053
    assert "application/pdf" in settings.allowed_attachment_types


async def test_a_calendar_names_each_bad_field(support: Support) -> None:
    problem = await fails(
        support.stub.CreateCalendar(
            pb.CreateCalendarRequest(
                name="Bad",
                time_zone="Europe/Nowhere",
                weekly_hours=["09:00-12:00", "12:00-09:00", "", "", "25:00-26:00", "", ""],
                country="ZZ",
                closed_days=["2026-13-01"],
            ),
            metadata=support.admin,
        )
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {
        "time_zone",
        "weekly_hours.tue",
        "weekly_hours.fri",
        "country",
        "closed_days[0]",
    }
    never_open = await fails(
        support.stub.CreateCalendar(
            pb.CreateCalendarRequest(name="Never", time_zone="UTC", weekly_hours=[""] * 7),
            metadata=support.admin,
        )
    )
    assert fields(never_open) == {"weekly_hours"}


async def test_a_calendar_keeps_its_hours_holidays_and_closed_days(support: Support) -> None:
    calendar = await support.calendar(
        subdivision="", closed_days=["2026-12-24", "2026-12-24", "2026-12-31"]
    )
    assert list(calendar.weekly_hours) == [OFFICE] * 5 + ["", ""]
    assert (calendar.country, list(calendar.closed_days)) == ("FR", ["2026-12-24", "2026-12-31"])
    taken = await fails(
        support.stub.CreateCalendar(
            pb.CreateCalendarRequest(
                name=calendar.name, time_zone="UTC", weekly_hours=["00:00-24:00"] * 7
            ),
            metadata=support.admin,
        )
    )
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS and fields(taken) == {"name"}


async def test_a_plan_covers_every_priority_and_only_ops_admin_makes_one(
    support: Support,
) -> None:
    calendar = await support.calendar()
    partial = await fails(
        support.stub.CreatePlan(
            pb.CreatePlanRequest(
                code=unique("P"),
                name="Partial",
                calendar_id=calendar.id,
                warning_percent=120,
                targets=[
                    pb.SlaTarget(
                        priority=pb.TICKET_PRIORITY_NORMAL,
                        first_response_minutes=0,
                        next_response_minutes=60,
                        resolution_minutes=60,
                    )
                ],
            ),
            metadata=support.admin,
        )
    )
    assert fields(partial) == {
        "warning_percent",
        "targets[0].first_response_minutes",
        "targets",
    }
    _, agent = await support.agent()
    refused = await fails(support.stub.CreatePlan(pb.CreatePlanRequest(code="X"), metadata=agent))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    plan = await support.plan(calendar.id)
    assert plan.warning_percent == 80
    assert [t.priority for t in plan.targets] == [1, 2, 3, 4]
    listed = await support.stub.ListPlans(pb.ListPlansRequest(), metadata=agent)
    assert plan.id in {p.id for p in listed.plans}


async def test_a_contract_is_for_customers_and_partners_only(support: Support) -> None:
    plan = await support.plan()
    association = await support.identity.organisation(ASSOCIATION)
    refused = await fails(
        support.stub.SetContract(
            pb.SetContractRequest(organisation_id=association, plan_id=plan.id),
            metadata=support.admin,
        )
    )
    # An id that names no customer is a 404, as an unknown one, with its own reason.
    assert refused.code == grpc.StatusCode.NOT_FOUND
    assert refused.reason == "not_a_customer"
    assert fields(refused) == {"organisation_id"}
    missing = await fails(
        support.stub.SetContract(
            pb.SetContractRequest(
                organisation_id="6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f", plan_id=plan.id
            ),
            metadata=support.admin,
        )
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND
    bad_mail = await fails(
        support.stub.SetContract(
            pb.SetContractRequest(
                organisation_id=association, plan_id=plan.id, operations_email="not-an-address"
            ),
            metadata=support.admin,
        )
    )
    assert fields(bad_mail) == {"operations_email"}
    org, _, token = await support.customer(
        plan.id, kind=DELIVERY_PARTNER, operations_email="ops@napoli.example.org"
    )
    own = await support.stub.GetContract(pb.GetContractRequest(organisation_id=org), metadata=token)
    assert own.contract.organisation_kind == "delivery_partner"
    assert own.contract.operations_email == "ops@napoli.example.org"
    assert own.plan.id == plan.id
    other, _, _ = await support.customer(plan.id)
    hidden = await fails(
        support.stub.GetContract(pb.GetContractRequest(organisation_id=other), metadata=token)
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


async def test_categories_and_answers(support: Support) -> None:
    category = await support.category()
    assert [e.question for e in category.entries] == ["La facture ne s'imprime pas"]
    updated = await support.stub.UpdateCategory(
        pb.UpdateCategoryRequest(
            category_id=category.id,
            name="Facturation et notes",
            entries=[
                pb.FaqEntryInput(question="Q1", answer="A1"),
                pb.FaqEntryInput(question="Q2", answer="A2"),
            ],
        ),
        metadata=support.admin,
    )
    assert [e.question for e in updated.category.entries] == ["Q1", "Q2"]
    _, _, customer = await support.customer()
    listed = await support.stub.ListCategories(
        pb.ListCategoriesRequest(audience=pb.CATEGORY_AUDIENCE_CUSTOMER), metadata=customer
    )
    assert category.id in {c.id for c in listed.categories}
    assert all(c.audience == pb.CATEGORY_AUDIENCE_CUSTOMER for c in listed.categories)
    refused = await fails(
        support.stub.CreateCategory(
            pb.CreateCategoryRequest(code="X", name="X", audience=pb.CATEGORY_AUDIENCE_CUSTOMER),
            metadata=customer,
        )
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    invalid = await fails(
        support.stub.CreateCategory(pb.CreateCategoryRequest(), metadata=support.admin)
    )
    assert fields(invalid) == {"code", "name", "audience"}
