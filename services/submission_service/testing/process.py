"""Starting `python -m submission_service` as a subprocess, for tests of the real process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Collection
from pathlib import Path

from common_core.testing.service_process import ServiceProcess, running_service
from submission_service.testing.harness import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET_KEY


def process_env(database_url: str, bootstrap: str, **extra: str) -> dict[str, str]:
    """Environment of an instance under test (test secrets, a topic prefix of its own); `extra`
    adds or replaces variables."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "TOPIC_PARTITIONS": "1",
        "JWT_SECRET": TEST_JWT_SECRET,
        "WEBHOOK_SECRET_KEYS": TEST_WEBHOOK_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.asynccontextmanager
async def service_process(
    env: dict[str, str], log_dir: Path, *, unset: Collection[str] = ()
) -> AsyncIterator[ServiceProcess]:
    """A started instance on a free port, always stopped (by PID) at the end; inherited variables
    named in `unset` are dropped (an `env` without them tests their absence)."""
    async with running_service(
        "submission_service", env=env, log_dir=log_dir, unset_prefixes=tuple(unset)
    ) as instance:
        yield instance
