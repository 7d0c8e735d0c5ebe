"""Who is calling: a logged-in user (JWT subject) or an anonymous learner (token)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Identity:
    """Exactly one of `user_id` or `anonymous_token`; every query is scoped to it."""

    user_id: str | None = None
    anonymous_token: UUID | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.anonymous_token is None):
            raise ValueError("an identity is exactly one of user_id or anonymous_token")

    @property
    def is_user(self) -> bool:
        """True for a logged-in user."""
        return self.user_id is not None

    @property
    def key(self) -> str:
        """A stable string naming this identity (for idempotency keys and logs)."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"anon:{self.anonymous_token}"
