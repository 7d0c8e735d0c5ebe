"""Several instances of one service as processes, and what each of them reports.

Each instance is `python -m <service>` on its own HTTP port (`start_service`), all on one broker
and one database. A benchmark starts timing only once the consumer group has settled: every
instance's last `partitions_assigned` log line for the group names its even share of the topic's
partitions (joins one after another cause rebalances, during which work would stall or move).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Unpack

import httpx
from prometheus_client.parser import text_string_to_metric_families

from common_core.testing.service_process import ServiceProcess, StartOptions, start_service


class ServiceInstances:
    """Instances of one service, added one at a time (a case with more instances reuses the
    running ones: start-ups are most of a case's time on a loaded machine); every one is stopped
    (by PID) when the block ends."""

    def __init__(
        self, module: str, *, env: Mapping[str, str], log_dir: Path, **options: Unpack[StartOptions]
    ) -> None:
        self._module = module
        self._env = env
        self._log_dir = log_dir
        self._options = options
        self.running: list[ServiceProcess] = []

    async def grow_to(self, count: int) -> list[ServiceProcess]:
        """Start instances until `count` run; the running ones."""
        while len(self.running) < count:
            self.running.append(
                await start_service(
                    self._module, env=self._env, log_dir=self._log_dir, **self._options
                )
            )
        return list(self.running)

    async def __aenter__(self) -> ServiceInstances:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for instance in self.running:
            await asyncio.to_thread(instance.stop, 30.0)


def _assigned(instance: ServiceProcess, group: str, topic: str) -> set[int] | None:
    """The partitions of `topic` in the instance's last assignment for `group` (None before).
    Lines that are not JSON (a library writing to stderr) are skipped."""
    last: set[int] | None = None
    with contextlib.suppress(OSError):
        for line in instance.log_path.read_text(errors="replace").splitlines():
            if '"partitions_assigned"' not in line:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == "partitions_assigned" and record.get("group") == group:
                    last = {
                        int(name.rsplit(":", 1)[1])
                        for name in record.get("partitions", [])
                        if name.rsplit(":", 1)[0] == topic
                    }
    return last


async def wait_for_even_assignment(
    instances: Sequence[ServiceProcess],
    *,
    group: str,
    topic: str,
    partitions: int,
    timeout: float = 90.0,
) -> list[list[int]]:
    """Wait until the instances hold all partitions of `topic`, an equal share each; the
    partitions per instance."""
    share = partitions // len(instances)
    deadline = time.monotonic() + timeout
    while True:
        held = [_assigned(instance, group, topic) for instance in instances]
        owned = [sorted(h) for h in held if h is not None]
        if (
            len(owned) == len(instances)
            and all(len(h) == share for h in owned)
            and len({p for h in owned for p in h}) == partitions
        ):
            return owned
        if time.monotonic() > deadline:
            raise RuntimeError(f"group {group} did not settle on {topic}: {held}")
        await asyncio.sleep(0.5)


async def metric_sum(instance: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of the instance's samples named `name` whose labels include `labels`."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        body = (await client.get(f"{instance.url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
