"""A fresh topic prefix and fresh databases for one measured case, dropped afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from benchmarks.stack import BenchStack, drop_database
from cj_assessment_service.config import Settings
from cj_assessment_service.entrypoints.runtime import SERVICE
from common_core.runtime.kernel import prepare_infrastructure


@dataclass(frozen=True)
class FleetCase:
    """The CJ settings the benchmark process uses, and the environment of the service
    processes (the same broker, prefix, partitions and databases)."""

    cj_settings: Settings
    env: dict[str, str]
    """Every service's: broker, database server, topic prefix and partitions, log level."""
    cj_env: dict[str, str]
    llm_env: dict[str, str]
    """The LLM provider's own database (one for all its instances: the shared rate budget)."""


@contextlib.asynccontextmanager
async def fresh_case(stack: BenchStack, label: str, *, partitions: int) -> AsyncIterator[FleetCase]:
    """Fresh names; the CJ database migrated and the topics created with `partitions` each
    (before any service process could create them with another count); dropped after.

    The CJ service's hedged requests are off: a straggler asked twice would make the number
    of provider calls depend on the queueing, which differs between the cases compared."""
    token = uuid.uuid4().hex[:8]
    cj_database, llm_database = f"bench_{label}_{token}", f"bench_{label}_{token}_llm"
    server = make_url(stack.postgres_server_url).set(database="postgres")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
        "DATABASE_URL": server.render_as_string(hide_password=False),
        "TOPIC_PREFIX": f"bench{label}{token}",
        "TOPIC_PARTITIONS": str(partitions),
        # INFO: the consumers' `partitions_assigned` lines tell when a group has settled.
        "LOG_LEVEL": "INFO",
    }
    cj_env = {**env, "SERVICE_DATABASE_NAME": cj_database, "HEDGE_MAX_SHARE": "0"}
    settings = Settings(
        database_url=env["DATABASE_URL"],
        service_database_name=cj_database,
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        topic_prefix=env["TOPIC_PREFIX"],
        topic_partitions=partitions,
        log_level="WARNING",
        hedge_max_share=0.0,
    )
    try:
        await prepare_infrastructure(SERVICE, settings)
        yield FleetCase(settings, env, cj_env, {**env, "SERVICE_DATABASE_NAME": llm_database})
    finally:
        await drop_database(stack.postgres_server_url, cj_database)
        await drop_database(stack.postgres_server_url, llm_database)
