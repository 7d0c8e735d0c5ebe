"""What the Kafka-facing command groups (`dlq`, `topics`) share: their common options and the
way a `ClientError` ends a command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console

from huleedu_cli.errors import EXIT_INTERRUPTED, ClientError

KafkaOption = Annotated[
    str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
]
TopicPrefixOption = Annotated[str, typer.Option(envvar="TOPIC_PREFIX", help="Topic prefix.")]
ConnectTimeoutOption = Annotated[float, typer.Option(min=0.5, help="Seconds to reach the broker.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@contextlib.contextmanager
def client_errors() -> Iterator[None]:
    """One clear line on stderr and the error's exit code instead of a traceback."""
    try:
        yield
    except ClientError as error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"error: {error.message}", markup=False
        )
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
