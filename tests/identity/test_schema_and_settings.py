"""The migrations build exactly the models' schema; settings fail fast; pure policies."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from services.identity.domain import accounts, common, credentials
from services.identity.models import Base
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings, parse_service_clients
from services.kit.db import alembic_config, create_engine, upgrade
from services.kit.mail import new_sealing_key
from services.kit.settings import load_settings
from services.kit.testing import DatabaseServer


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models_and_go_down_and_up(pg: DatabaseServer) -> None:
    url = await pg.new_database("identity_schema")
    await upgrade(SPEC.migrations_dir, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            indexes = await connection.run_sync(
                lambda sync: {i["name"]: i for i in inspect(sync).get_indexes("users")}
            )
        assert indexes["uq_users_username_lower"]["unique"]
        config = alembic_config(SPEC.migrations_dir, url)
        await asyncio.to_thread(command.downgrade, config, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(SPEC.migrations_dir, url)
    finally:
        await engine.dispose()


# --- settings -----------------------------------------------------------------------------------


def settings(**values: object) -> IdentitySettings:
    return IdentitySettings(
        database_url="postgresql://x@localhost/identity",
        mail_sealing_key=new_sealing_key(),
        **values,  # type: ignore[arg-type]
    )


def test_defaults_follow_the_brief() -> None:
    defaults = settings()
    assert defaults.grpc_port == 50051
    assert defaults.access_token_ttl_seconds == 300
    assert defaults.refresh_token_ttl_seconds == 30 * 24 * 3600
    assert defaults.service_token_ttl_seconds == 600
    assert defaults.signing_key_rotation_seconds == 24 * 3600
    assert defaults.verify_link_ttl_seconds == 48 * 3600
    assert defaults.reset_link_ttl_seconds == 3600
    assert (defaults.lockout_threshold, defaults.lockout_window_seconds) == (5, 900)
    assert defaults.lockout_seconds == 900
    assert (defaults.argon2_memory_cost_kib, defaults.argon2_time_cost) == (19456, 2)
    assert defaults.argon2_parallelism == 1


def test_service_clients_are_parsed_and_checked() -> None:
    assert parse_service_clients(f" gateway={'s' * 24} , worker={'w' * 30}") == {
        "gateway": "s" * 24,
        "worker": "w" * 30,
    }
    for bad in ("gateway", f"Bad Id={'s' * 24}", "gateway=short", f"a={'s' * 24},a={'t' * 24}"):
        with pytest.raises(ValueError):
            parse_service_clients(bad)


@pytest.mark.parametrize(
    "values",
    [
        {"mail_sealing_key": "not base64!"},
        {"mail_sealing_key": "c2hvcnQ="},
        {"service_clients": "gateway=short"},
        {"bootstrap_admin_username": "ops.admin"},
        {"bootstrap_admin_username": "ops.admin", "bootstrap_admin_password": "short"},
        {"bootstrap_admin_username": "ops.admin", "bootstrap_admin_password": "I am OPS.ADMIN ok"},
        {"public_base_url": "localhost:8000"},
    ],
)
def test_a_bad_setting_stops_the_process_with_a_message(
    values: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments: dict[str, object] = {
        "database_url": "postgresql://x@localhost/identity",
        "mail_sealing_key": new_sealing_key(),
        **values,
    }
    with pytest.raises(SystemExit) as stopped:
        load_settings(IdentitySettings, **arguments)
    assert stopped.value.code == 2
    assert "IdentitySettings: invalid configuration" in capsys.readouterr().err


def test_the_sealing_key_is_required() -> None:
    with pytest.raises(SystemExit):
        load_settings(IdentitySettings, database_url="postgresql://x@localhost/identity")


# --- pure policies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "ok"),
    [
        ("DUPONT.jean", True),
        ("a-b_c.d", True),
        ("ab", False),
        ("x" * 65, False),
        ("jean dupont", False),
        ("jéan", False),
        ("", False),
    ],
)
def test_username_policy(username: str, ok: bool) -> None:
    assert (credentials.username_problems(username) == []) is ok


def test_password_policy_reports_every_problem() -> None:
    assert credentials.password_problems("Jean.Dup", "jean.dup") == [
        "must be at least 12 characters",
        "must not contain the username",
    ]
    assert credentials.password_problems("vélo rouge sur le quai", "jean") == []
    # Long enough, but one letter repeated, a keyboard row, a common password.
    guessable = "is too easy to guess"
    for weak in ("x" * 12, "azertyuiop123", "password1234"):
        assert [p for p in credentials.password_problems(weak, "jean.dupont") if guessable in p], (
            weak
        )


def test_passwords_up_to_the_published_maximum_are_judged_not_crashed_on() -> None:
    """zxcvbn raises past 72 characters: a 128-character passphrase (the schema's maximum) was
    an internal error; it is judged on its first 72 now."""
    long_one = ("vélo rouge sur le quai de la gare " * 4)[: credentials.PASSWORD_MAX]
    assert len(long_one) == 128
    assert credentials.password_problems(long_one, "jean") == []
    assert [code for _, code in credentials.password_problem_codes("x" * 128, "jean")] == [
        "weak_password"
    ]
    assert [code for _, code in credentials.password_problem_codes("x" * 129, "jean")] == [
        "string_too_long"
    ]


def test_fold_removes_accents_case_and_extra_spaces() -> None:
    assert accounts.fold("  Élodie   LEFÈVRE ") == "elodie lefevre"
    assert accounts.fold("Straße") == "strasse"


def test_email_normalisation() -> None:
    assert common.normalise_email(" Jean@EXAMPLE.org ") == "Jean@example.org"
    with pytest.raises(ValueError):
        common.normalise_email("jean@")
