"""Starting `python -m cj_assessment_service` as a subprocess for crash and scale-out tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity
from common_core.testing.service_process import ServiceProcess, running_service


@contextlib.asynccontextmanager
async def service_process(env: dict[str, str], log_dir: Path) -> AsyncIterator[ServiceProcess]:
    """A started instance on a free port, always stopped (by PID) at the end."""
    async with running_service("cj_assessment_service", env=env, log_dir=log_dir) as instance:
        yield instance


async def get_json(instance: ServiceProcess, path: str) -> Any:
    """GET a JSON document from the instance (None unless it answers 200)."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{instance.url}{path}")
        return response.json() if response.status_code == 200 else None


async def metrics_text(instance: ServiceProcess) -> str:
    """The instance's Prometheus exposition."""
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{instance.url}/metrics")).text


def process_env(database_url: str, bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment for an instance under test."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": prefix,
        "MONITOR_INTERVAL_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        **extra,
    }


async def group_members(bootstrap: str, group_id: str, security: KafkaSecurity = PLAINTEXT) -> int:
    """How many members a stable consumer group has (0 while rebalancing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_kwargs())
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    for response in responses:
        for group in response.groups:
            state, members = group[2], group[5]
            if state == "Stable":
                return len(members)
    return 0
