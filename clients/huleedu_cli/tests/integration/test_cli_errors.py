"""The CLI's error paths, run through typer's CliRunner: one clear line, the right exit code."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devstack import free_port
from huleedu_cli.app import app

pytestmark = pytest.mark.integration

runner = CliRunner()


def essays_folder(root: Path, texts: dict[str, str]) -> Path:
    folder = root / "essays"
    folder.mkdir()
    for essay_id, text in texts.items():
        (folder / f"{essay_id}.txt").write_text(text, encoding="utf-8")
    return folder


class TestInputErrors:
    def test_missing_folder_exits_2_with_the_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "no-such-folder"
        result = runner.invoke(app, ["cj", "submit", str(missing), "--prompt", "Discuss."])

        assert result.exit_code == 2
        assert f"essay folder or CSV not found: {missing}" in result.stderr
        assert "Traceback" not in result.output

    def test_empty_essay_exits_2_naming_the_file(self, tmp_path: Path) -> None:
        folder = essays_folder(tmp_path, {"good": "A real essay.", "blank": "   \n"})
        result = runner.invoke(app, ["cj", "submit", str(folder), "--prompt", "Discuss."])

        assert result.exit_code == 2
        assert "essay file is empty" in result.stderr
        assert "blank.txt" in result.stderr

    def test_folder_without_essays_exits_2(self, tmp_path: Path) -> None:
        folder = essays_folder(tmp_path, {})
        result = runner.invoke(app, ["cj", "submit", str(folder)])

        assert result.exit_code == 2
        assert "no essays found" in result.stderr

    def test_prompt_and_prompt_file_together_are_refused(self, tmp_path: Path) -> None:
        folder = essays_folder(tmp_path, {"a": "Essay."})
        prompt = tmp_path / "prompt.md"
        prompt.write_text("Discuss.", encoding="utf-8")
        result = runner.invoke(
            app,
            ["cj", "submit", str(folder), "--prompt", "x", "--prompt-file", str(prompt)],
        )

        assert result.exit_code == 2
        assert "either --prompt or --prompt-file" in result.stderr


class TestUnreachableBroker:
    def test_closed_port_exits_2_with_one_clear_line(self, tmp_path: Path) -> None:
        folder = essays_folder(tmp_path, {"a": "First essay.", "b": "Second essay."})
        address = f"127.0.0.1:{free_port()}"

        result = runner.invoke(
            app,
            ["cj", "submit", str(folder), "--prompt", "Discuss.", "--kafka", address],
        )

        assert result.exit_code == 2
        assert f"error: cannot reach the Kafka broker at {address}" in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1

    def test_unroutable_address_ends_by_the_connect_timeout(self, tmp_path: Path) -> None:
        # 192.0.2.0/24 is TEST-NET-1: depending on the network the connect attempt fails at
        # once or hangs until the deadline; either way the CLI ends with one clear line.
        folder = essays_folder(tmp_path, {"a": "First essay.", "b": "Second essay."})
        result = runner.invoke(
            app,
            [
                "cj",
                "submit",
                str(folder),
                "--kafka",
                "192.0.2.1:9092",
                "--connect-timeout",
                "1",
            ],
        )

        assert result.exit_code == 2
        assert "error: cannot reach the Kafka broker at 192.0.2.1:9092: " in result.stderr
        assert "Traceback" not in result.output


class TestTopicsRefused:
    def test_a_topic_the_broker_will_not_create_exits_2_pointing_at_topics_apply(
        self, tmp_path: Path, kafka_bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # One broker here: a replication factor of 3 is refused, as creating anything is on a
        # cluster that forbids it.
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR_REQUESTS", "3")
        prefix = f"refused{uuid.uuid4().hex[:10]}"
        folder = essays_folder(tmp_path, {"a": "First essay.", "b": "Second essay."})

        result = runner.invoke(
            app,
            [
                "cj",
                "submit",
                str(folder),
                "--prompt",
                "Discuss.",
                "--kafka",
                kafka_bootstrap_servers,
                "--topic-prefix",
                prefix,
            ],
        )

        assert result.exit_code == 2
        assert result.stderr.startswith(
            f"error: the broker refused to create {prefix}.els.cj_assessment.requested.v1 "
            "(InvalidReplicationFactorError"
        )
        assert result.stderr.strip().endswith("create them with huleedu topics apply")
        assert "Traceback" not in result.output
