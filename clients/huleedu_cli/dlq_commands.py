"""`huleedu dlq`: list and replay dead letters. The Kafka side lives in `dead_letters`.

Nothing here prints a letter's contents (essay or answer text): only its headers, key, event id
and size.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from common_core.topics import DEFAULT_TOPIC_PREFIX
from huleedu_cli.cli_options import (
    ConnectTimeoutOption,
    JsonOption,
    KafkaOption,
    TopicPrefixOption,
    client_errors,
)
from huleedu_cli.dead_letters import (
    REPLAYED_FROM_HEADER,
    DeadLetter,
    dead_letter_counts,
    plan_replay,
    read_dead_letters,
    replay_dead_letters,
    resolve_topic,
)
from huleedu_cli.errors import InputError, NoDeadLettersMatchedError
from huleedu_cli.kafka_client import DEFAULT_BOOTSTRAP_SERVERS, kafka_security_from_environment

ERROR_WIDTH = 60

dlq_app = typer.Typer(
    help="Dead letters: what consumers could not process, sent to <topic>.dlq.",
    no_args_is_help=True,
)

TopicArgument = Annotated[
    str,
    typer.Argument(
        help="The original topic; its .dlq name works too, a registered topic may omit the prefix."
    ),
]


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render_dead_letters(console: Console, dlq_topic: str, letters: list[DeadLetter]) -> None:
    """A table of the letters' metadata (never their contents)."""
    if not letters:
        console.print(f"no dead letters in {dlq_topic}", markup=False)
        return
    table = Table(title=Text(f"{len(letters)} dead letters in {dlq_topic}"), title_justify="left")
    # Every cell folds rather than being cut off; the error column is capped so that in a
    # 150-column terminal an event id stays whole (to copy into `replay --event-id`).
    columns: tuple[tuple[str, JustifyMethod, int | None], ...] = (
        ("failed at (UTC)", "left", None),
        ("reason", "left", None),
        ("tries", "right", None),
        ("key", "left", 24),
        ("event id", "left", None),
        ("bytes", "right", None),
        ("dlq p:o", "right", None),
        ("error", "left", 28),
    )
    for name, justify, max_width in columns:
        table.add_column(name, justify=justify, overflow="fold", max_width=max_width)
    for letter in letters:
        table.add_row(
            *(
                Text(cell)  # Text, not str: keys and messages are not rich markup
                for cell in (
                    f"{letter.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                    letter.reason,
                    str(letter.attempts) if letter.attempts is not None else "-",
                    letter.key if letter.key is not None else "-",
                    letter.event_id or "",
                    str(letter.size),
                    f"{letter.partition}:{letter.offset}",
                    _one_line(letter.error_message, ERROR_WIDTH),
                )
            )
        )
    console.print(table)


@dlq_app.command("list")
def list_dead_letters(
    topic: TopicArgument,
    *,
    kafka: KafkaOption = DEFAULT_BOOTSTRAP_SERVERS,
    topic_prefix: TopicPrefixOption = DEFAULT_TOPIC_PREFIX,
    connect_timeout: ConnectTimeoutOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """List a topic's dead letters: when, reason, attempts, key, event id, size, where, error.

    Reads <topic>.dlq from the beginning to its current end without joining a consumer group
    or committing anything. A letter's contents (essay or answer text) are never printed.
    """
    with client_errors():
        _, dlq_topic = resolve_topic(topic, topic_prefix)
        letters = asyncio.run(
            read_dead_letters(
                kafka,
                dlq_topic,
                connect_timeout=connect_timeout,
                security=kafka_security_from_environment(),
            )
        )
    if as_json:
        typer.echo(json.dumps([letter.summary() for letter in letters], indent=2))
    else:
        render_dead_letters(Console(highlight=False), dlq_topic, letters)


@dlq_app.command("replay")
def replay(
    topic: TopicArgument,
    *,
    event_id: Annotated[
        UUID | None, typer.Option(help="Replay the dead letter of this event.")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter of the topic.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed, publish nothing.")
    ] = False,
    kafka: KafkaOption = DEFAULT_BOOTSTRAP_SERVERS,
    topic_prefix: TopicPrefixOption = DEFAULT_TOPIC_PREFIX,
    connect_timeout: ConnectTimeoutOption = 10.0,
) -> None:
    """Republish dead letters to their original topic (give --event-id ID or --all).

    Each goes out with its original bytes and key, without the x-dlq-* headers, with an
    x-replayed-from header naming the letter (acks from all replicas, idempotent producer).
    An event with several letters is replayed once, from its latest. The letters stay in the
    dead-letter topic. Replaying the same letter twice is safe: consumers de-duplicate on
    event_id. Exits 1 when no letter matched.
    """
    console = Console(highlight=False, soft_wrap=True)
    with client_errors():
        if (event_id is None) == (not replay_all):
            raise InputError("give exactly one of --event-id ID or --all")
        _, dlq_topic = resolve_topic(topic, topic_prefix)
        letters = asyncio.run(
            read_dead_letters(
                kafka,
                dlq_topic,
                connect_timeout=connect_timeout,
                security=kafka_security_from_environment(),
            )
        )
        plan = plan_replay(letters, event_id)
        if not plan.letters:
            raise NoDeadLettersMatchedError(
                f"no dead letter with event id {event_id} in {dlq_topic} "
                f"({len(letters)} letters there)"
                if event_id is not None
                else f"no dead letters in {dlq_topic}"
            )
        if not dry_run:
            asyncio.run(
                replay_dead_letters(
                    kafka,
                    plan.letters,
                    connect_timeout=connect_timeout,
                    security=kafka_security_from_environment(),
                )
            )
    verb = "would replay" if dry_run else "replayed"
    for letter in plan.letters:
        console.print(
            f"{verb} {letter.event_id or '(no event id)'} key={letter.key or '-'} "
            f"reason={letter.reason} from {letter.address} to {letter.original_topic}",
            markup=False,
        )
    console.print(
        f"{verb} {len(plan.letters)} dead letters"
        + (
            f"; left out {plan.superseded} older letters of the same events"
            if plan.superseded
            else ""
        )
        + ("" if dry_run else f" (header {REPLAYED_FROM_HEADER})"),
        markup=False,
    )


@dlq_app.command("topics")
def topics(
    *,
    kafka: KafkaOption = DEFAULT_BOOTSTRAP_SERVERS,
    connect_timeout: ConnectTimeoutOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """List the dead-letter topics on the broker with how many letters each holds.

    Replayed letters are counted too: Kafka keeps them until retention removes them.
    """
    with client_errors():
        counts = asyncio.run(
            dead_letter_counts(
                kafka,
                connect_timeout=connect_timeout,
                security=kafka_security_from_environment(),
            )
        )
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
        return
    console = Console(highlight=False)
    if not counts:
        console.print(f"no dead-letter topics at {kafka}", markup=False)
        return
    table = Table("dead-letter topic", "letters")
    for name, count in counts.items():
        table.add_row(Text(name), Text(str(count)))
    console.print(table)
