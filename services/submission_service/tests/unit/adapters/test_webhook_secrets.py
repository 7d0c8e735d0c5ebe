"""Webhook secrets at rest: the Fernet key ring and what an unset WEBHOOK_SECRET_KEYS means."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.config import DEV_JWT_SECRET, DEV_WEBHOOK_SECRET_KEY, Settings

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


class TestWebhookSecretBox:
    @given(st.text())
    def test_a_secret_round_trips_and_the_token_does_not_contain_it(self, secret: str) -> None:
        box = WebhookSecretBox([NEW_KEY])

        token = box.encrypt(secret)

        assert box.decrypt(token) == secret
        assert token.startswith("gA")
        assert len(secret) < 8 or secret not in token

    def test_a_rotated_ring_encrypts_with_the_new_key_and_still_reads_old_tokens(self) -> None:
        old_token = WebhookSecretBox([OLD_KEY]).encrypt("s3cret")
        ring = WebhookSecretBox([NEW_KEY, OLD_KEY])

        new_token = ring.encrypt("s3cret")

        assert ring.decrypt(old_token) == "s3cret"
        assert WebhookSecretBox([NEW_KEY]).decrypt(new_token) == "s3cret"
        assert WebhookSecretBox([OLD_KEY]).decrypt(new_token) is None

    def test_only_tokens_not_under_the_first_key_need_rotation(self) -> None:
        ring = WebhookSecretBox([NEW_KEY, OLD_KEY])
        old_token = WebhookSecretBox([OLD_KEY]).encrypt("s3cret")

        rotated = ring.rotate(old_token)

        assert ring.needs_rotation(old_token)
        assert not ring.needs_rotation(rotated)
        assert WebhookSecretBox([NEW_KEY]).decrypt(rotated) == "s3cret"

    @pytest.mark.parametrize("token", ["not a token", "gAAAAA", "ünïcode"])
    def test_a_token_no_key_decrypts_reads_as_none(self, token: str) -> None:
        assert WebhookSecretBox([NEW_KEY]).decrypt(token) is None
        assert WebhookSecretBox([NEW_KEY]).decrypt(WebhookSecretBox([OLD_KEY]).encrypt("x")) is None

    def test_a_malformed_key_is_refused_without_repeating_it(self) -> None:
        with pytest.raises(ValueError, match="entry 2 is not a Fernet key") as caught:
            WebhookSecretBox([NEW_KEY, "hunter2-not-a-key"])

        assert "hunter2" not in str(caught.value)

    def test_an_empty_ring_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no key"):
            WebhookSecretBox([])


class TestKeyRingSetting:
    def test_keys_are_a_comma_separated_list_newest_first(self) -> None:
        settings = Settings(webhook_secret_keys=f" {NEW_KEY} ,{OLD_KEY},", jwt_secret="real")

        assert settings.webhook_secret_key_ring() == [NEW_KEY, OLD_KEY]
        assert not settings.uses_dev_webhook_secret_key

    def test_unset_in_a_development_setup_means_the_development_key(self) -> None:
        settings = Settings(webhook_secret_keys=None, jwt_secret=DEV_JWT_SECRET)

        assert settings.uses_dev_jwt_secret
        assert settings.webhook_secret_key_ring() == [DEV_WEBHOOK_SECRET_KEY]
        assert settings.uses_dev_webhook_secret_key

    def test_unset_where_jwt_secret_is_set_refuses_to_start(self) -> None:
        with pytest.raises(ValidationError, match="WEBHOOK_SECRET_KEYS must be set") as caught:
            Settings(webhook_secret_keys=None, jwt_secret="a-real-deployment-secret")

        assert "a-real-deployment-secret" not in str(caught.value)

    @pytest.mark.parametrize("value", ["hunter2-not-a-key", f"{NEW_KEY},hunter2-not-a-key", " , "])
    def test_a_malformed_key_setting_refuses_to_start_without_repeating_it(
        self, value: str
    ) -> None:
        with pytest.raises(ValidationError, match="WEBHOOK_SECRET_KEYS") as caught:
            Settings(webhook_secret_keys=value, jwt_secret="a-real-deployment-secret")

        assert "hunter2" not in str(caught.value)
        assert NEW_KEY not in str(caught.value)
        assert "a-real-deployment-secret" not in str(caught.value)

    def test_the_keys_never_show_in_the_settings_repr(self) -> None:
        settings = Settings(webhook_secret_keys=NEW_KEY)

        assert NEW_KEY not in repr(settings)
