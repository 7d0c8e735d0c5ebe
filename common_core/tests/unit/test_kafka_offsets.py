"""Out-of-order completion, in-order commits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common_core.runtime.kafka_offsets import OffsetTracker


class TestOffsetTracker:
    def test_commit_point_waits_for_the_lowest_unfinished_offset(self) -> None:
        tracker: OffsetTracker[str] = OffsetTracker()
        for offset in (10, 11, 12):
            tracker.taken("p0", offset)
        tracker.done("p0", 12)
        tracker.done("p0", 11)
        assert tracker.uncommitted() == {"p0": 10}
        tracker.done("p0", 10)
        assert tracker.uncommitted() == {"p0": 13}

    def test_committed_points_are_not_reported_again(self) -> None:
        tracker: OffsetTracker[str] = OffsetTracker()
        tracker.taken("p0", 0)
        tracker.done("p0", 0)
        tracker.committed(tracker.uncommitted())
        assert tracker.uncommitted() == {}

    def test_partitions_are_independent_and_forgettable(self) -> None:
        tracker: OffsetTracker[str] = OffsetTracker()
        tracker.taken("p0", 5)
        tracker.taken("p1", 7)
        tracker.done("p1", 7)
        assert tracker.uncommitted() == {"p0": 5, "p1": 8}
        tracker.forget(["p0"])
        tracker.done("p0", 5)  # a late completion for a revoked partition is ignored
        assert tracker.uncommitted() == {"p1": 8}

    @given(order=st.permutations(list(range(30))), cut=st.integers(0, 30))
    def test_never_commits_past_an_unfinished_record(self, order: list[int], cut: int) -> None:
        tracker: OffsetTracker[str] = OffsetTracker()
        for offset in range(30):
            tracker.taken("p", offset)
        finished = set(order[:cut])
        for offset in order[:cut]:
            tracker.done("p", offset)
        point = tracker.commit_point("p")
        assert point is not None
        assert all(o in finished for o in range(point))
        unfinished = set(range(30)) - finished
        assert point == (min(unfinished) if unfinished else 30)
