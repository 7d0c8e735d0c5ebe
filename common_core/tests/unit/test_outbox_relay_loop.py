"""The relay's loop around its database passes: a failed purge does not end the relay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from common_core.runtime import outbox
from common_core.runtime.outbox import OutboxRelay


class _RelayWhosePurgeFails(OutboxRelay):
    """Nothing to publish; every purge raises as if the database went away at that moment."""

    def __init__(self) -> None:
        engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
        super().__init__(engine, producer=Any, poll_interval_seconds=0.0, listen=False)  # type: ignore[arg-type]
        self.purges = 0
        self.passes = 0

    async def publish_pending(self) -> int:
        self.passes += 1
        if self.passes == 3:
            self.stop()  # this pass's purge still runs, then the loop ends
        return 0

    async def purge_published(self) -> int:
        self.purges += 1
        raise ConnectionRefusedError("the database is away")


async def test_a_failing_purge_is_logged_and_the_relay_keeps_publishing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "PURGE_INTERVAL", timedelta(0))
    relay = _RelayWhosePurgeFails()
    with capture_logs() as logs:
        await asyncio.wait_for(relay.run(), timeout=60)
    assert relay.passes == 3, "the relay went on publishing after each failed purge"
    assert relay.purges == 3
    failures = [entry for entry in logs if entry["event"] == "outbox_purge_failed"]
    assert len(failures) == 3
    assert failures[0]["error"] == "ConnectionRefusedError: the database is away"
