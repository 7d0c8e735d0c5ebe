"""Topic provisioning: creating the topics the platform uses with their partitions, replication
factor and retention, or verifying that an operator did.

Services create their topics at start-up (`KAFKA_TOPICS_MODE=create`), so nothing relies on
broker-side auto-creation (which would give the broker's default partitions and configs). On a
cluster that forbids creating topics they only verify them (`verify`): a `TopicVerifier` keeps
`/healthz/ready` failing, naming the topics, until they exist (`huleedu topics apply` or the
operator's own tooling).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from common_core.errors import NotReadyError
from common_core.runtime.kafka_security import PLAINTEXT, KafkaAccessError, KafkaSecurity
from common_core.topics import TopicClass

log = structlog.get_logger(__name__)

ADMIN_CLIENT_ID = "huleedu-admin"
DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the platform wants it."""

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int | None = None
    """`retention.ms` given to a created topic (-1: kept forever); None leaves the broker's."""
    topic_class: TopicClass | None = None

    def configs(self) -> dict[str, str]:
        """The topic configs a created topic gets."""
        return {} if self.retention_ms is None else {"retention.ms": str(self.retention_ms)}


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic as the broker has it."""

    name: str
    partitions: int
    replication_factor: int


@dataclass(frozen=True, slots=True)
class TopicsApplied:
    """What `apply_topics` did: created the missing topics, left the others as they were."""

    created: list[TopicSpec]
    existing: list[TopicState]
    differences: list[str]
    """Existing topics whose partitions or replication factor differ from their spec."""
    problems: list[str]
    """The differences that make them unusable as specified (fewer partitions or replicas)."""


class TopicCreationError(Exception):
    """The broker refused to create a topic (not allowed, replication factor too high, ...)."""


class TopicsNotReadyError(NotReadyError):
    """Topics are missing or have too few partitions or replicas (verify mode)."""


def admin_client(
    bootstrap_servers: str,
    *,
    security: KafkaSecurity = PLAINTEXT,
    client_id: str = ADMIN_CLIENT_ID,
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
) -> AIOKafkaAdminClient:
    """The one place the platform's topic admin client is built (not started)."""
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=int(request_timeout_seconds * 1000),
        **security.client_kwargs(),
    )


async def describe_topics(
    bootstrap_servers: str,
    *,
    security: KafkaSecurity = PLAINTEXT,
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
) -> dict[str, TopicState]:
    """Every topic on the cluster with its partitions and replication factor."""
    admin = admin_client(
        bootstrap_servers, security=security, request_timeout_seconds=request_timeout_seconds
    )
    try:
        await admin.start()
        return await _describe(admin)
    finally:
        await admin.close()


async def _describe(admin: AIOKafkaAdminClient) -> dict[str, TopicState]:
    # All topics, never some by name: a metadata request naming a topic makes a broker with
    # `auto.create.topics.enable` create it with its defaults.
    described = await admin.describe_topics()
    found: dict[str, TopicState] = {}
    for topic in described:
        if topic["error_code"]:
            continue
        partitions = topic["partitions"]
        found[topic["topic"]] = TopicState(
            name=topic["topic"],
            partitions=len(partitions),
            replication_factor=min((len(p["replicas"]) for p in partitions), default=0),
        )
    return found


def topic_problems(specs: Iterable[TopicSpec], existing: dict[str, TopicState]) -> list[str]:
    """What keeps the topics from being usable as specified: a missing topic, fewer partitions
    or a lower replication factor than wanted (more of either is fine)."""
    problems: list[str] = []
    for spec in specs:
        state = existing.get(spec.name)
        if state is None:
            problems.append(f"{spec.name} is missing")
            continue
        if state.partitions < spec.partitions:
            problems.append(
                f"{spec.name} has {state.partitions} partitions, expected {spec.partitions}"
            )
        if state.replication_factor < spec.replication_factor:
            problems.append(
                f"{spec.name} has replication factor {state.replication_factor}, "
                f"expected at least {spec.replication_factor}"
            )
    return problems


def _differences(spec: TopicSpec, state: TopicState) -> list[str]:
    differences = []
    if state.partitions != spec.partitions:
        differences.append(f"{state.partitions} partitions, planned {spec.partitions}")
    if state.replication_factor != spec.replication_factor:
        differences.append(
            f"replication factor {state.replication_factor}, planned {spec.replication_factor}"
        )
    return differences


async def apply_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    security: KafkaSecurity = PLAINTEXT,
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
) -> TopicsApplied:
    """Create the topics that do not exist yet with their spec; existing ones are left as they
    are and reported where they differ. Idempotent, safe from several processes at once; returns
    once the cluster's metadata lists every topic (a created topic reaches the brokers' metadata
    a moment after the controller confirms it). Topics the broker's ACLs forbid creating raise
    `KafkaAccessError` (naming the setting of the principal), others refused
    `TopicCreationError`."""
    wanted = {spec.name: spec for spec in specs}
    admin = admin_client(
        bootstrap_servers, security=security, request_timeout_seconds=request_timeout_seconds
    )
    try:
        await admin.start()
        existing = await _describe(admin)
        missing = [spec for name, spec in sorted(wanted.items()) if name not in existing]
        created = missing
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication_factor,
                        topic_configs=spec.configs(),
                    )
                    for spec in missing
                ]
            )
            already, refused, forbidden = _outcomes(response.topic_errors)
            if forbidden:
                raise KafkaAccessError(
                    security.principal_setting,
                    f"{security.principal} may not create the topics {', '.join(forbidden)}: "
                    "the broker's ACLs lack CREATE (and DESCRIBE) on them",
                )
            created = [spec for spec in missing if spec.name not in already | set(refused)]
            existing = await _listed(admin, set(wanted) - set(refused), request_timeout_seconds)
            if refused:
                raise TopicCreationError(
                    "the broker refused to create "
                    + ", ".join(f"{name} ({reason})" for name, reason in sorted(refused.items()))
                    + f"; created {len(created)} others"
                )
    finally:
        await admin.close()
    if created:
        log.info("topics_created", topics=[spec.name for spec in created])
    fresh = {spec.name for spec in created}
    present = [existing[name] for name in sorted(wanted) if name not in fresh]
    differences = [
        f"{state.name} has {', '.join(found)}"
        for state in present
        if (found := _differences(wanted[state.name], state))
    ]
    problems = topic_problems([wanted[state.name] for state in present], existing)
    return TopicsApplied(
        created=created, existing=present, differences=differences, problems=problems
    )


async def _listed(
    admin: AIOKafkaAdminClient, names: set[str], timeout_seconds: float
) -> dict[str, TopicState]:
    """The cluster's topics once the metadata lists all of `names`."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        existing = await _describe(admin)
        absent = names - set(existing)
        if not absent:
            return existing
        if time.monotonic() > deadline:
            raise TopicCreationError(
                f"created topics not listed by the cluster after {timeout_seconds:g}s: "
                + ", ".join(sorted(absent))
            )
        await asyncio.sleep(0.1)


def _outcomes(
    topic_errors: Sequence[tuple[object, ...]],
) -> tuple[set[str], dict[str, str], list[str]]:
    """The topics another process created meanwhile, those refused with the reason, and those
    the ACLs forbid (a CreateTopics response reports each topic's outcome rather than failing
    the request)."""
    already: set[str] = set()
    refused: dict[str, str] = {}
    forbidden: list[str] = []
    for name, code, *message in topic_errors:
        if not isinstance(code, int) or code == 0:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            already.add(str(name))
        elif error in (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
            forbidden.append(str(name))
        else:
            detail = f": {message[0]}" if message and message[0] else ""
            refused[str(name)] = f"{error.__name__}{detail}"
    return already, refused, sorted(forbidden)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the topics that do not exist yet, all alike with the broker's retention."""
    await apply_topics(
        bootstrap_servers,
        [
            TopicSpec(name, partitions=partitions, replication_factor=replication_factor)
            for name in sorted(set(topics))
        ],
        security=security,
    )


class TopicVerifier:
    """A readiness check for verify mode: the topics exist with enough partitions and
    replicas. A pass is remembered for `cache_seconds` (readiness is polled often; topics,
    once there, stay); a failure is not, so the service is ready as soon as they are created."""

    def __init__(
        self,
        bootstrap_servers: str,
        specs: Sequence[TopicSpec],
        *,
        security: KafkaSecurity = PLAINTEXT,
        cache_seconds: float = 60.0,
        request_timeout_seconds: float = 10.0,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._specs = list(specs)
        self._cache_seconds = cache_seconds
        self._request_timeout_seconds = request_timeout_seconds
        self._passed_at: float | None = None

    async def problems(self) -> list[str]:
        """What is wrong with the topics now (asks the broker)."""
        existing = await describe_topics(
            self._bootstrap_servers,
            security=self._security,
            request_timeout_seconds=self._request_timeout_seconds,
        )
        return topic_problems(self._specs, existing)

    async def check(self) -> None:
        """Raise `TopicsNotReadyError` naming every topic that is missing or too small."""
        now = time.monotonic()
        if self._passed_at is not None and now - self._passed_at < self._cache_seconds:
            return
        self._passed_at = None
        problems = await self.problems()
        if problems:
            raise TopicsNotReadyError("; ".join(problems))
        self._passed_at = now
