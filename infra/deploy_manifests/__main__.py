"""`python -m deploy_manifests`: regenerate deploy/base/prometheus-rule.yaml from alerts.yml."""

from __future__ import annotations

from deploy_manifests import PROMETHEUS_RULE_FILE, REPO_ROOT, prometheus_rule_text

if __name__ == "__main__":
    PROMETHEUS_RULE_FILE.write_text(prometheus_rule_text(), encoding="utf-8")
    print(f"wrote {PROMETHEUS_RULE_FILE.relative_to(REPO_ROOT)}")
