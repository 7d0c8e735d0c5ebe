"""Webhook signing secrets encrypted at rest: Fernet tokens over a key ring (MultiFernet)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class WebhookSecretBox:
    """Encrypts secrets with the first key; decrypts with any key of the ring (rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("WEBHOOK_SECRET_KEYS holds no key")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except ValueError:
                # The message names the entry, never its value.
                raise ValueError(
                    f"WEBHOOK_SECRET_KEYS entry {number} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._primary = fernets[0]
        self._ring = MultiFernet(fernets)

    def encrypt(self, secret: str) -> str:
        """A Fernet token of the secret under the primary key (what the column holds)."""
        return self._primary.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str | None:
        """The secret, or None when no key of the ring decrypts the token."""
        try:
            return self._ring.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            return None

    def needs_rotation(self, token: str) -> bool:
        """True when the token is not under the primary key (a retired key may still read it)."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return True
        return False

    def rotate(self, token: str) -> str:
        """The token re-encrypted under the primary key; raises InvalidToken if none decrypts."""
        return self._ring.rotate(token.encode("ascii")).decode("ascii")
