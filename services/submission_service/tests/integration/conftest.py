"""A module-scoped in-process submission service on the real Kafka and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from submission_service.testing.harness import ServiceUnderTest, running_service, settings_for_tests


@pytest.fixture(scope="module")
async def service(
    database_url: str, kafka_bootstrap_servers: str
) -> AsyncIterator[ServiceUnderTest]:
    """The service with its consumer, outbox relay and webhook dispatcher running."""
    async with running_service(
        settings_for_tests(database_url, kafka_bootstrap_servers)
    ) as running:
        yield running
