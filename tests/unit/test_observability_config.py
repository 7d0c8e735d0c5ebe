"""The Grafana dashboard and the compose scrape config name metrics and targets that exist."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[2]
METRIC_MODULES = (
    "common_core.runtime.metrics",
    "cj_assessment_service.metrics",
    "llm_provider_service.metrics",
    "submission_service.metrics",
)
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _registered_families() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return {family.name for family in REGISTRY.collect()}


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class TestGrafanaDashboard:
    def test_every_metric_on_the_dashboard_is_registered_by_a_service(self) -> None:
        dashboard = json.loads((REPO_ROOT / "infra/grafana/dashboards/huleedu.json").read_text())
        expressions = [
            target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
        ]
        used = {m for expr in expressions for m in re.findall(r"huleedu_[a-z_]+", expr)}
        registered = _registered_families()
        missing = sorted(m for m in used if _family(m) not in registered)
        assert used
        assert missing == []

    def test_dashboard_covers_all_three_services(self) -> None:
        text = (REPO_ROOT / "infra/grafana/dashboards/huleedu.json").read_text()
        for prefix in ("huleedu_cj_", "huleedu_llm_", "huleedu_submission_"):
            assert prefix in text


class TestComposeScrapeConfig:
    def test_prometheus_scrapes_each_service_on_the_operations_port_compose_gives_it(
        self,
    ) -> None:
        scrape = (REPO_ROOT / "infra/prometheus/prometheus.yml").read_text()
        compose = (REPO_ROOT / "docker-compose.yml").read_text()
        for service, port, ops_port in (
            ("submission_service", 8001, 9001),
            ("llm_provider_service", 8002, 9002),
            ("cj_assessment_service", 8003, 9003),
        ):
            assert f'"{service}:{ops_port}"' in scrape
            assert f"HTTP_PORT: {port}" in compose
            assert f"OPS_HTTP_PORT: {ops_port}" in compose
            assert f"SERVICE: {service}" in compose


class TestMetricsDocumentation:
    def test_every_registered_metric_is_documented(self) -> None:
        documented = (REPO_ROOT / "docs/metrics.md").read_text()
        ours = sorted(name for name in _registered_families() if name.startswith("huleedu_"))
        undocumented = [name for name in ours if name not in documented]
        assert ours
        assert undocumented == []
