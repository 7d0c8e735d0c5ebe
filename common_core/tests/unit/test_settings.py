"""The settings base: environment handling and the service database URL rule."""

from __future__ import annotations

import pytest

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
