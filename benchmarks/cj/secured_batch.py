"""`secured`: the 100-essay CJ batch over plaintext and over the secured stack, in one run.

(a) plaintext: the run's broker and PostgreSQL (as `throughput`), services as the superuser with
migrations at start. (b) secured: a broker of its own whose only client listener is SASL_SSL
(SCRAM-SHA-512, a test CA) with one user per service and ACLs on the benchmark's topics and the
service's consumer groups, and a TLS-only PostgreSQL of its own; each service's database is
migrated first by an owner role (`python -m <service> migrate`), the owner applies what
`python -m <service> grants ROLE` prints, and the service then runs as that DML-only role with
`verify-full` and migration at start off. Both servers are durable (production settings).

The batch is the `throughput` reference (100 essays, 1,000 comparisons, the offline heuristic
judge), fresh services and databases per batch. The two cases alternate (a b, b a, ...) so
drift in the machine's load falls on both; figures are the medians over the repetitions
(BENCH_SECURED_REPETITIONS, 3 by default). Issue 21's figure: (b) in the same time as (a)
within noise.

`python -m benchmarks.cj secured` runs only this benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks.cj.service_batches import BatchShape, run_service_batch
from benchmarks.cj.throughput import COMPARISONS_PER_ESSAY, TARGET_RELIABILITY, WORDS
from benchmarks.stack import BenchStack
from common_core.runtime.database import DatabaseTLS, connect_raw
from common_core.runtime.kafka_security import KafkaSecuritySettings
from common_core.testing.service_process import REPO_ROOT
from devstack import RunningPostgres, free_port, start_postgres
from devstack.kafka_secured import CLI_USER, SecuredKafka, new_user, start_secured_kafka

ESSAYS = 100
SERVICES = ("cj_assessment_service", "llm_provider_service")
# run_service_batch names every topic prefix `bench<label>...`: the users' topic ACLs cover it.
TOPIC_ACL_PREFIX = "bench"
# Figures compared side by side (medians over the repetitions).
FIGURES = (
    "wall_seconds",
    "in_service_seconds",
    "comparisons_per_second",
    "waves",
    "mean_round_trip_seconds",
    "mean_outbox_delay_seconds",
    "cj_cpu_seconds",
    "llm_provider_cpu_seconds",
    "max_event_loop_lag_seconds",
)


@dataclass(frozen=True)
class SecuredServers:
    """The secured broker and the TLS-only PostgreSQL of case (b)."""

    kafka: SecuredKafka
    postgres: RunningPostgres
    secrets_dir: Path

    @property
    def tls(self) -> DatabaseTLS:
        """verify-full against the server's test CA."""
        return DatabaseTLS(mode="verify-full", root_cert=self.postgres.ca_file)

    def bench_stack(self) -> BenchStack:
        """The stack as the benchmark's own clients see it: the CLI user, the superuser."""
        cli = KafkaSecuritySettings.model_validate(
            {name.lower(): value for name, value in self.kafka.client_env(CLI_USER).items()}
        )
        superuser = make_url(self.postgres.url).update_query_dict(
            {"sslmode": "verify-full", "sslrootcert": str(self.postgres.ca_file)}
        )
        return BenchStack(
            kafka_bootstrap_servers=self.kafka.bootstrap_servers,
            postgres_server_url=superuser.render_as_string(hide_password=False),
            kafka_security=cli.kafka_security,
        )


@contextlib.contextmanager
def secured_servers() -> Iterator[SecuredServers]:
    """Start the secured broker (a user per service, and the CLI's) and the TLS PostgreSQL;
    stop both by PID afterwards."""
    state = Path(tempfile.mkdtemp(prefix="bench-secured-"))
    state.chmod(0o755)  # the postgres account must reach its data directory
    secrets_dir = state / "secrets"
    secrets_dir.mkdir(mode=0o700)
    users = [
        *(new_user(s, topic_prefix=TOPIC_ACL_PREFIX, group_prefixes=[s]) for s in SERVICES),
        new_user(CLI_USER, topic_prefix=TOPIC_ACL_PREFIX),
    ]
    try:
        kafka = start_secured_kafka(state, users, die_with_parent=True)
        try:
            postgres = start_postgres(state, free_port(), tls=True)
            try:
                yield SecuredServers(kafka, postgres, secrets_dir)
            finally:
                postgres.stop()
        finally:
            kafka.process.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)


async def _command(service: str, env: dict[str, str], *arguments: str) -> str:
    """`python -m <service> <arguments>` with `env`; its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        service,
        *arguments,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"{service} {arguments[0]} failed:\n{out.decode()}\n{err.decode()}")
    return out.decode()


async def _execute(url: str, tls: DatabaseTLS, statements: list[str]) -> None:
    connection = await connect_raw(url, tls)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _least_privilege_env(
    servers: SecuredServers, service: str, database: str
) -> dict[str, str]:
    """Make an owner and a runtime role for `service`, migrate `database` as the owner, grant
    the runtime role its DML rights; the service's environment as the runtime role."""
    suffix = uuid.uuid4().hex[:8]
    short = service.split("_", maxsplit=1)[0]
    owner, runtime = f"{short}_owner_{suffix}", f"{short}_app_{suffix}"
    env_of: dict[str, dict[str, str]] = {}
    passwords: dict[str, str] = {}
    for role, extra in ((owner, " CREATEDB"), (runtime, "")):
        password = passwords[role] = uuid.uuid4().hex
        secret = servers.secrets_dir / f"{role}.password"
        secret.touch(mode=0o600)
        secret.write_text(password)
        await _execute(
            servers.postgres.url,
            servers.tls,
            [f"CREATE ROLE {role} LOGIN PASSWORD '{password}'{extra}"],
        )
        env_of[role] = {
            **servers.kafka.client_env(service),
            "DATABASE_URL": make_url(servers.postgres.url)
            .set(username=role)
            .render_as_string(hide_password=False),
            "DATABASE_PASSWORD_FILE": str(secret),
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": str(servers.postgres.ca_file),
            "SERVICE_DATABASE_NAME": database,
        }
    await _command(service, env_of[owner], "migrate")
    grants = (await _command(service, env_of[owner], "grants", runtime)).splitlines()
    # The owner owns the database and its tables, so it can hand the rights on.
    owner_url = make_url(servers.postgres.url).set(
        username=owner,
        password=passwords[owner],
        database=database,
    )
    await _execute(owner_url.render_as_string(hide_password=False), servers.tls, grants)
    return {**env_of[runtime], "DATABASE_MIGRATE_ON_START": "false"}


def _median(cases: list[dict[str, Any]], figure: str) -> float | None:
    values = [case[figure] for case in cases if case.get(figure) is not None]
    return round(statistics.median(values), 3) if values else None


def _run_figures(case: dict[str, Any]) -> dict[str, Any]:
    return {name: case[name] for name in ("wall_seconds", "in_service_seconds", "load_average_1m")}


async def run(stack: BenchStack) -> dict[str, Any]:
    """(a) and (b), alternating, BENCH_SECURED_REPETITIONS times each; medians side by side."""
    repetitions = int(os.environ.get("BENCH_SECURED_REPETITIONS", "3"))
    shape = BatchShape(
        essays=ESSAYS,
        words=WORDS,
        budget=COMPARISONS_PER_ESSAY * ESSAYS,
        target_reliability=TARGET_RELIABILITY,
    )
    plain: list[dict[str, Any]] = []
    secured: list[dict[str, Any]] = []
    with secured_servers() as servers:
        secured_stack = servers.bench_stack()

        async def least_privilege(cj_db: str, llm_db: str) -> tuple[dict[str, str], dict[str, str]]:
            return (
                await _least_privilege_env(servers, SERVICES[0], cj_db),
                await _least_privilege_env(servers, SERVICES[1], llm_db),
            )

        for repetition in range(repetitions):
            order = ("plain", "secured") if repetition % 2 == 0 else ("secured", "plain")
            for case in order:
                if case == "plain":
                    plain.append(await run_service_batch(stack, shape, label="plain"))
                else:
                    secured.append(
                        await run_service_batch(
                            secured_stack, shape, label="sec", services_env=least_privilege
                        )
                    )
                figures = (plain if case == "plain" else secured)[-1]
                figures["load_average_1m"] = round(os.getloadavg()[0], 2)
                print(
                    f"bench: secured #{repetition + 1} {case}: {figures['wall_seconds']} s "
                    f"({figures['in_service_seconds']} s in CJ, {figures['waves']} waves), "
                    f"round trip {figures['mean_round_trip_seconds']} s, CPU s CJ "
                    f"{figures['cj_cpu_seconds']} / LLM {figures['llm_provider_cpu_seconds']}, "
                    f"load {figures['load_average_1m']}",
                    flush=True,
                )
    medians = {
        figure: {"plaintext": _median(plain, figure), "secured": _median(secured, figure)}
        for figure in FIGURES
    }
    wall = medians["wall_seconds"]
    ratio = (
        round(wall["secured"] / wall["plaintext"], 2)
        if wall["secured"] and wall["plaintext"]
        else None
    )
    print(
        f"bench: secured: {ESSAYS}-essay batch, median of {repetitions}: SASL_SSL + verify-full "
        f"+ DML-only roles {wall['secured']} s beside plaintext {wall['plaintext']} s "
        f"(x{ratio}); of which in CJ {medians['in_service_seconds']['secured']} s vs "
        f"{medians['in_service_seconds']['plaintext']} s; round trip "
        f"{medians['mean_round_trip_seconds']['secured']} s vs "
        f"{medians['mean_round_trip_seconds']['plaintext']} s; load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return {
        "essays": ESSAYS,
        "repetitions": repetitions,
        "secured_over_plaintext_wall": ratio,
        "medians": medians,
        # Each batch's wall and in-CJ seconds and the 1-minute load average after it, in order.
        "plaintext_runs": [_run_figures(case) for case in plain],
        "secured_runs": [_run_figures(case) for case in secured],
    }
