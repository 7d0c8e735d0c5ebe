"""`huleedu topics`: the platform's topics for a prefix and layout settings, printed (`plan`) or
created (`apply`), for an operator whose cluster does not let the services create them
(`KAFKA_TOPICS_MODE=verify`).

The layout comes from the same settings the services read (`TOPIC_PARTITIONS`,
`TOPIC_PARTITIONS_REQUESTS`, `TOPIC_RETENTION_MS_DEAD_LETTERS`, ...: `TopicSettings`), so what
`apply` creates is what a service in verify mode checks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer
from rich.console import Console

from common_core.runtime.kafka_admin import (
    TopicCreationError,
    TopicsApplied,
    TopicSpec,
    apply_topics,
)
from common_core.runtime.kafka_security import KafkaAccessError
from common_core.runtime.settings import DAY_MS
from common_core.topics import DEFAULT_TOPIC_PREFIX, platform_topics
from huleedu_cli.cli_options import (
    ConnectTimeoutOption,
    JsonOption,
    KafkaOption,
    TopicPrefixOption,
    client_errors,
)
from huleedu_cli.errors import EXIT_TOPICS_DIFFER, BrokerRefusedError, TopicsRefusedError
from huleedu_cli.kafka_client import (
    DEFAULT_BOOTSTRAP_SERVERS,
    connecting,
    kafka_security_from_environment,
    topic_layout,
)

topics_app = typer.Typer(
    help="The platform's Kafka topics: print the plan, create the missing ones.",
    no_args_is_help=True,
)


def topic_plan(topic_prefix: str) -> list[TopicSpec]:
    """Every topic of the platform under the prefix, laid out by the environment's settings."""
    layout = topic_layout(topic_prefix)
    return layout.topic_specs(platform_topics(layout.topic_prefix))


def describe_retention(retention_ms: int | None) -> str:
    """A retention for people: days where it is whole days."""
    if retention_ms is None:
        return "broker default"
    if retention_ms == -1:
        return "forever"
    if retention_ms > 0 and retention_ms % DAY_MS == 0:
        days = retention_ms // DAY_MS
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{retention_ms} ms"


def spec_summary(spec: TopicSpec) -> dict[str, Any]:
    """A topic of the plan, JSON-ready."""
    return {
        "topic": spec.name,
        "class": spec.topic_class.value if spec.topic_class is not None else None,
        "partitions": spec.partitions,
        "replication_factor": spec.replication_factor,
        "retention_ms": spec.retention_ms,
    }


def plan_lines(specs: list[TopicSpec]) -> list[str]:
    """The plan as aligned columns (plain text: topic names are long and never cut)."""
    rows = [("topic", "class", "partitions", "replication", "retention")]
    rows += [
        (
            spec.name,
            spec.topic_class.value if spec.topic_class is not None else "-",
            str(spec.partitions),
            str(spec.replication_factor),
            describe_retention(spec.retention_ms),
        )
        for spec in specs
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return [
        f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {partitions:>{widths[2]}}  "
        f"{replication:>{widths[3]}}  {retention}"
        for name, kind, partitions, replication, retention in rows
    ]


@topics_app.command("plan")
def plan(
    *,
    topic_prefix: TopicPrefixOption = DEFAULT_TOPIC_PREFIX,
    as_json: JsonOption = False,
) -> None:
    """Print every topic of the platform with its partitions, replication factor and retention.

    The layout is read from the environment, as the services read it: TOPIC_PARTITIONS and
    TOPIC_REPLICATION_FACTOR, overridden per class (requests, callbacks, completions,
    dead letters) by TOPIC_PARTITIONS_<CLASS>, TOPIC_REPLICATION_FACTOR_<CLASS> and
    TOPIC_RETENTION_MS_<CLASS>. Nothing is sent to the broker.
    """
    with client_errors():
        specs = topic_plan(topic_prefix)
    if as_json:
        typer.echo(json.dumps([spec_summary(spec) for spec in specs], indent=2))
    else:
        for line in plan_lines(specs):
            typer.echo(line)


async def _apply(kafka: str, specs: list[TopicSpec], connect_timeout: float) -> TopicsApplied:
    security = kafka_security_from_environment()
    try:
        async with connecting(kafka, connect_timeout, security):
            return await apply_topics(
                kafka, specs, security=security, request_timeout_seconds=connect_timeout
            )
    except TopicCreationError as error:
        raise TopicsRefusedError(str(error)) from None
    except KafkaAccessError as error:
        raise BrokerRefusedError(str(error)) from None


@topics_app.command("apply")
def apply(
    *,
    kafka: KafkaOption = DEFAULT_BOOTSTRAP_SERVERS,
    topic_prefix: TopicPrefixOption = DEFAULT_TOPIC_PREFIX,
    connect_timeout: ConnectTimeoutOption = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Create the topics of the plan that are missing, with its settings (as `plan` prints).

    Existing topics are left as they are (running it again changes nothing); those whose
    partitions or replication factor differ from the plan are listed. Exits 1 when an existing
    topic has fewer partitions or replicas than planned: a service in KAFKA_TOPICS_MODE=verify
    stays not ready on it, and only an operator can change it.
    """
    console = Console(highlight=False, soft_wrap=True)
    with client_errors():
        specs = topic_plan(topic_prefix)
        applied = asyncio.run(_apply(kafka, specs, connect_timeout))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "created": [spec_summary(spec) for spec in applied.created],
                    "existing": [state.name for state in applied.existing],
                    "differences": applied.differences,
                    "problems": applied.problems,
                },
                indent=2,
            )
        )
    else:
        for spec in applied.created:
            console.print(
                f"created {spec.name} ({spec.partitions} partitions, replication factor "
                f"{spec.replication_factor}, retention {describe_retention(spec.retention_ms)})",
                markup=False,
            )
        for difference in applied.differences:
            console.print(f"differs: {difference}", markup=False)
        console.print(
            f"{len(applied.created)} topics created, {len(applied.existing)} already there"
            + (f", {len(applied.differences)} differ from the plan" if applied.differences else ""),
            markup=False,
        )
    if applied.problems:
        raise typer.Exit(EXIT_TOPICS_DIFFER)
