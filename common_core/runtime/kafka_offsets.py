"""Out-of-order completion, in-order commits: which offset each partition may commit."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

PartitionT = TypeVar("PartitionT", bound=Hashable)


class OffsetTracker(Generic[PartitionT]):
    """Tracks records taken from each partition until they are fully handled.

    A partition's commit point is its lowest offset still being handled, or one past the highest
    offset taken when nothing is pending: every record below it is done, so committing it can
    never skip an unanswered request, whatever order the requests finish in.
    """

    def __init__(self) -> None:
        self._pending: dict[PartitionT, set[int]] = {}
        self._next: dict[PartitionT, int] = {}
        self._committed: dict[PartitionT, int] = {}

    def taken(self, partition: PartitionT, offset: int) -> None:
        """A record was fetched and handling started."""
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def done(self, partition: PartitionT, offset: int) -> None:
        """A record is fully handled (its callback acknowledged, or it was dead-lettered)."""
        pending = self._pending.get(partition)
        if pending is not None:
            pending.discard(offset)

    def commit_point(self, partition: PartitionT) -> int | None:
        """The offset this partition may commit (None if nothing was taken from it)."""
        if partition not in self._next:
            return None
        pending = self._pending.get(partition)
        return min(pending) if pending else self._next[partition]

    def uncommitted(self) -> dict[PartitionT, int]:
        """Commit points that moved past what was last committed."""
        moves: dict[PartitionT, int] = {}
        for partition in self._next:
            point = self.commit_point(partition)
            if point is not None and point > self._committed.get(partition, -1):
                moves[partition] = point
        return moves

    def committed(self, offsets: dict[PartitionT, int]) -> None:
        """The broker accepted these commit points."""
        for partition, offset in offsets.items():
            self._committed[partition] = max(self._committed.get(partition, -1), offset)

    def forget(self, partitions: Iterable[PartitionT]) -> None:
        """Partitions left this consumer (rebalance): drop their state."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
