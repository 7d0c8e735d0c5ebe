"""The alerting rules in infra/prometheus/alerts.yml: valid, unit-tested, and naming what exists.

promtool comes with Debian's prometheus package, which `make test` provisions (as for the scrape
test): a missing promtool fails these tests with the command to run, it never skips them.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

from devstack.prometheus import ALERT_RULES, provision_promtool

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ALERT_RULES.parent
METRIC_MODULES = (
    "common_core.runtime.metrics",
    "cj_assessment_service.metrics",
    "llm_provider_service.metrics",
    "submission_service.metrics",
)
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
TARGET_LABELS = {"job", "instance"}  # attached by Prometheus to every scraped series


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [provision_promtool(), *args],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _alerts() -> dict[str, str]:
    """Each alert's name and its definition's text (comments left out)."""
    lines = [
        line for line in ALERT_RULES.read_text().splitlines() if not line.strip().startswith("#")
    ]
    blocks = re.split(r"\n\s*- alert: ", "\n".join(lines))[1:]
    return {block.split("\n", 1)[0].strip(): block for block in blocks}


def _expression(definition: str) -> str:
    match = re.search(r"expr:(.*?)\n\s+for:", definition, re.DOTALL)
    assert match is not None, definition
    return match.group(1)


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _registered_label_names() -> dict[str, set[str]]:
    """Every registered metric family and its label names (a histogram's buckets add `le`)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    # Label names live on the collectors (a labelled metric with no child yet has no samples);
    # a custom collector (common_core's DatabasePoolCollector) names them in `label_names`.
    collectors = REGISTRY._names_to_collectors
    return {
        _family(name): set(
            getattr(collector, "_labelnames", ()) or getattr(collector, "label_names", ())
        )
        | ({"le"} if getattr(collector, "_type", None) == "histogram" else set())
        for name, collector in collectors.items()
    }


def _label_names_used(expression: str) -> set[str]:
    grouped = re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expression)
    matchers = re.findall(r"\{([^}]*)\}", expression)
    names = {name.strip() for group in grouped for name in group.split(",") if name.strip()}
    for matcher in matchers:
        names.update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matcher))
    return names


class TestPromtool:
    def test_the_rules_file_passes_promtool_check_rules(self) -> None:
        result = _promtool("check", "rules", ALERT_RULES.name)

        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout

    def test_every_alert_behaves_as_its_promtool_unit_tests_expect(self) -> None:
        result = _promtool("test", "rules", "alerts_test.yml")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_the_compose_prometheus_config_loads_the_rules_file(self) -> None:
        result = _promtool("check", "config", "prometheus.yml")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 1 rule files found" in result.stdout
        compose = (REPO_ROOT / "docker-compose.yml").read_text()
        assert "./infra/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose


class TestAlertDefinitions:
    def test_every_alert_has_unit_tests_where_it_fires_and_where_it_stays_quiet(self) -> None:
        tests = (RULES_DIR / "alerts_test.yml").read_text()
        cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*)", tests)
        firing = {name for name, rest in cases if rest.strip() != "[]"}
        quiet = {name for name, rest in cases if rest.strip() == "[]"}

        assert set(_alerts()) == firing
        assert set(_alerts()) == quiet

    def test_every_alert_has_a_severity_annotations_and_an_explicit_for(self) -> None:
        for name, definition in _alerts().items():
            assert re.search(r"\n\s+for: \d+[smh]\n", definition), name
            assert re.search(r"\n\s+severity: (critical|warning)\n", definition), name
            for annotation in ("summary", "description", "runbook"):
                assert re.search(rf"\n\s+{annotation}: \S", definition), (name, annotation)

    def test_expressions_name_registered_metrics_and_their_labels(self) -> None:
        registered = _registered_label_names()
        for name, definition in _alerts().items():
            expression = _expression(definition)
            metrics = {_family(m) for m in re.findall(r"huleedu_[a-z_]+", expression)}
            unknown = sorted(m for m in metrics if m not in registered)
            assert unknown == [], name
            known_labels = TARGET_LABELS.union(*(registered[m] for m in metrics))
            used = _label_names_used(expression) | set(re.findall(r"\$labels\.(\w+)", definition))
            assert sorted(used - known_labels) == [], name

    def test_service_down_covers_every_job_the_compose_prometheus_scrapes(self) -> None:
        selector = re.search(r'up\{job=~"([^"]+)"\}', _expression(_alerts()["ServiceDown"]))
        jobs = re.findall(r"job_name: (\w+)", (RULES_DIR / "prometheus.yml").read_text())

        assert selector is not None
        assert jobs
        assert [job for job in jobs if not re.fullmatch(selector.group(1), job)] == []

    def test_every_alert_links_its_section_in_docs_alerts(self) -> None:
        docs = (REPO_ROOT / "docs/alerts.md").read_text()
        for name, definition in _alerts().items():
            runbook = re.search(r"\n\s+runbook: (\S+)", definition)
            assert runbook is not None, name
            assert runbook.group(1) == f"docs/alerts.md#{name.lower()}"
            assert re.search(rf"^### {name}$", docs, re.MULTILINE), name
