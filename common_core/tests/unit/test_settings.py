"""The settings base: environment handling and the service database URL rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from common_core.runtime.settings import ServiceSettings


class TestServiceSettings:
    def test_empty_environment_variables_count_as_unset(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_PREFIX", "")
        monkeypatch.setenv("HTTP_PORT", "")
        settings = ServiceSettings()
        assert settings.topic_prefix == "huleedu"
        assert settings.http_port == 8000

    def test_service_database_url_uses_the_services_own_database_on_the_server(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/postgres")
        monkeypatch.setenv("SERVICE_DATABASE_NAME", "huleedu_cj")
        assert ServiceSettings().service_database_url == (
            "postgresql+asyncpg://u:p@db:5432/huleedu_cj"
        )
        monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/mine")
        assert ServiceSettings().service_database_url.endswith("/mine")


class SecretSettings(ServiceSettings):
    token: SecretStr | None = None
    plain: str = "default"


class TestSecretFiles:
    def test_a_secret_setting_is_read_from_its_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        secret = tmp_path / "token"
        secret.write_text("from-a-file\n")
        monkeypatch.setenv("TOKEN_FILE", str(secret))
        token = SecretSettings().token
        assert token is not None
        assert token.get_secret_value() == "from-a-file"

    def test_a_setting_that_is_no_secret_has_no_file_variant(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        value = tmp_path / "plain"
        value.write_text("from-a-file")
        monkeypatch.setenv("PLAIN_FILE", str(value))
        assert SecretSettings().plain == "default"

    def test_a_secret_set_both_ways_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        secret = tmp_path / "token"
        secret.write_text("from-a-file")
        monkeypatch.setenv("TOKEN_FILE", str(secret))
        monkeypatch.setenv("TOKEN", "from-the-environment")
        with pytest.raises(ValueError, match="set TOKEN or TOKEN_FILE, not both"):
            SecretSettings()

    def test_a_missing_secret_file_is_named(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("TOKEN_FILE", str(tmp_path / "absent"))
        with pytest.raises(ValueError, match=r"cannot read the secret file .*absent"):
            SecretSettings()
