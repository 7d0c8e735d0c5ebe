from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress, TextColumn

from huleedu_cli.app import ProgressView
from huleedu_cli.status_client import BatchProgress, BatchStatus


@pytest.fixture
def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), console=Console(file=io.StringIO()))


class TestProgressView:
    def test_status_sets_percentage_state_and_comparison_counts(self, progress: Progress) -> None:
        task = progress.add_task("publishing request", total=100.0, detail="")
        view = ProgressView(progress, task)

        view(
            BatchStatus(
                batch_id="b",
                entity_ref="r",
                state="WAITING_CALLBACKS",
                progress=BatchProgress(
                    budget=20, planned=20, completed=9, failed=1, percent_complete=50.0
                ),
            )
        )

        shown = progress.tasks[0]
        assert shown.completed == pytest.approx(50.0)
        assert shown.description == "waiting_callbacks"
        assert shown.fields["detail"] == "9/20 comparisons, 1 failed"

    def test_unknown_status_says_it_is_waiting(self, progress: Progress) -> None:
        task = progress.add_task("publishing request", total=100.0, detail="")
        ProgressView(progress, task)(None)
        assert progress.tasks[0].description == "waiting for the CJ service"
