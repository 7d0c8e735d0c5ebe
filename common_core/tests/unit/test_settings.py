"""The settings base: environment handling and the service database URL rule."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError

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


class TestApiAuthSettings:
    def test_auth_is_off_without_keys_and_on_with_them(self) -> None:
        assert not ServiceSettings().api_auth_enabled
        assert ServiceSettings(auth_jwt_secret="s" * 32).api_auth_enabled
        assert not ServiceSettings(auth_jwt_secret="s" * 32, auth_mode="disabled").api_auth_enabled

    def test_required_auth_needs_a_key_source(self) -> None:
        with pytest.raises(ValidationError, match="AUTH_MODE=required needs"):
            ServiceSettings(auth_mode="required")

    def test_a_secret_and_a_secret_file_together_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="not both"):
            ServiceSettings(auth_jwt_secret="s" * 32, auth_jwt_secret_file=tmp_path / "secret")

    def test_the_secret_file_is_read_without_its_newline(self, tmp_path: Path) -> None:
        path = tmp_path / "secret"
        path.write_text("from-a-file\n")
        assert ServiceSettings(auth_jwt_secret_file=path).auth_secret() == "from-a-file"


class _ProtectedSettings(ServiceSettings):
    protects_api: ClassVar[bool] = True


class TestProductionMode:
    def test_a_protected_api_without_auth_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="API authentication is disabled"):
            _ProtectedSettings(environment="production")
        with pytest.raises(ValidationError, match="API authentication is disabled"):
            _ProtectedSettings(
                environment="production", auth_jwt_secret="s" * 32, auth_mode="disabled"
            )

    def test_a_short_auth_secret_is_refused_by_name(self, tmp_path: Path) -> None:
        path = tmp_path / "secret"
        path.write_text("too-short\n")
        for settings in ({"auth_jwt_secret": "too-short"}, {"auth_jwt_secret_file": path}):
            with pytest.raises(ValidationError, match="AUTH_JWT_SECRET is shorter than 32 bytes"):
                _ProtectedSettings(environment="production", **settings)

    def test_a_long_secret_or_a_key_set_starts(self) -> None:
        assert _ProtectedSettings(environment="production", auth_jwt_secret="s" * 32)
        assert _ProtectedSettings(environment="production", auth_jwks_url="https://idp/jwks")

    def test_the_refusal_never_repeats_the_secret(self) -> None:
        with pytest.raises(ValidationError) as caught:
            _ProtectedSettings(environment="production", auth_jwt_secret="hunter2-secret")
        assert "hunter2" not in str(caught.value)
        assert "AUTH_JWT_SECRET is shorter" in str(caught.value)
