"""The Kubernetes manifests under `deploy/`: rendering them with kustomize, and the one file
generated from another (the PrometheusRule carrying `infra/prometheus/alerts.yml`).

`python -m deploy_manifests` rewrites `deploy/base/prometheus-rule.yaml` from `alerts.yml`;
`tests/unit/test_deploy_manifests.py` fails while the two differ.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
ALERTS_FILE = REPO_ROOT / "infra" / "prometheus" / "alerts.yml"
PROMETHEUS_RULE_FILE = DEPLOY_DIR / "base" / "prometheus-rule.yaml"
KUBECTL_INSTALL_HINT = (
    "kubectl (with its built-in kustomize) is needed to render deploy/: install it with "
    "`apt-get install kubectl` from the Kubernetes apt repository or as one binary "
    "(https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/), version 1.27 or newer"
)
_RULE_HEADER = """\
# Generated from infra/prometheus/alerts.yml by `python -m deploy_manifests`: do not edit, edit
# alerts.yml and regenerate (tests/unit/test_deploy_manifests.py checks the two are equal).
# The same groups and rules for the Prometheus Operator; what each alert means: docs/alerts.md.
"""


class KubectlMissingError(RuntimeError):
    """kubectl is not installed, so the manifests cannot be rendered."""


def alert_groups() -> list[dict[str, Any]]:
    """The rule groups of `infra/prometheus/alerts.yml`."""
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))["groups"]
    return groups


def prometheus_rule_text() -> str:
    """`deploy/base/prometheus-rule.yaml` as `alerts.yml` makes it."""
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "huleedu-alerts"},
        "spec": {"groups": alert_groups()},
    }
    return _RULE_HEADER + yaml.safe_dump(document, sort_keys=False, width=100)


def render(overlay: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize deploy/overlays/<overlay>` renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KubectlMissingError(KUBECTL_INSTALL_HINT)
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY_DIR / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize failed for {overlay}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
