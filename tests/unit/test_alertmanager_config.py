"""The example Alertmanager configuration (infra/alertmanager/alertmanager.yml): valid for
Alertmanager, and routing every severity the alerts use to its receiver.

amtool comes with Debian's prometheus-alertmanager package, provisioned like promtool: a missing
amtool fails these tests with the command to run, it never skips them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devstack.prometheus import ALERT_RULES, provision_amtool

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "infra" / "alertmanager" / "alertmanager.yml"
RECEIVER_OF_SEVERITY = {"critical": "pager", "warning": "chat"}


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [provision_amtool(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _routed_to(*labels: str) -> list[str]:
    result = _amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


class TestAlertmanagerConfig:
    def test_amtool_accepts_the_configuration(self) -> None:
        result = _amtool("check-config", str(CONFIG))

        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout
        assert " - 2 receivers" in result.stdout
        assert " - 1 inhibit rules" in result.stdout  # criticals hold back their job's warnings

    @pytest.mark.parametrize(("severity", "receiver"), sorted(RECEIVER_OF_SEVERITY.items()))
    def test_each_severity_reaches_its_own_receiver(self, severity: str, receiver: str) -> None:
        routed = _routed_to(
            "alertname=HTTPErrorRatioHigh", "job=submission_service", f"severity={severity}"
        )

        assert routed == [receiver]

    def test_every_severity_the_alerts_use_has_a_route(self) -> None:
        used = set(re.findall(r"\n\s+severity: (\w+)\n", ALERT_RULES.read_text()))

        assert used
        assert used <= set(RECEIVER_OF_SEVERITY)
