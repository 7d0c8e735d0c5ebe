"""Local stack: a real Kafka broker, PostgreSQL and the services, run as plain processes.

The CLI (`python -m devstack up|down|status|env|provision`), the Makefile and the pytest
fixtures in the repo-root conftest.py all go through this package, so every machine takes the
same path. What it starts, where it keeps state and which ports it uses: the README's
"Day to day" section.
"""

from devstack.kafka import (
    ClusterMetadata,
    fetch_cluster_metadata,
    restart_kafka,
    start_kafka,
    wait_for_kafka,
)
from devstack.postgres import RunningPostgres, create_databases, start_postgres
from devstack.processes import RunningProcess, StackError, free_port

__all__ = [
    "ClusterMetadata",
    "RunningPostgres",
    "RunningProcess",
    "StackError",
    "create_databases",
    "fetch_cluster_metadata",
    "free_port",
    "restart_kafka",
    "start_kafka",
    "start_postgres",
    "wait_for_kafka",
]
