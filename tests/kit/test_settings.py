"""Settings fail fast with every bad variable named, and read credentials from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kit.settings import ServiceSettings, load_settings


def test_missing_and_bad_values_are_all_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("GRPC_PORT", "not-a-port")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "DATABASE_URL" in message
    assert "GRPC_PORT" in message
    assert "Traceback" not in message


def test_credentials_are_read_from_the_secrets_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "database_url").write_text("postgresql://app:s3cret@db:5432/identity")
    (tmp_path / "service_client_secret").write_text("from-a-file")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("GUICHET_SECRETS_DIR", str(tmp_path))
    settings = load_settings(ServiceSettings)
    assert settings.database_url == "postgresql://app:s3cret@db:5432/identity"
    assert settings.service_client_secret == "from-a-file"
