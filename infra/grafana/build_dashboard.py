"""Writes infra/grafana/dashboards/huleedu.json: one dashboard for all three services.

Run `python infra/grafana/build_dashboard.py` after changing metrics; the JSON is committed so
docker-compose's Grafana provisions it as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "huleedu.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# A panel: its title, its query (or queries, drawn together) and its unit.
ROWS: list[tuple[str, list[tuple[str, str | tuple[str, ...], str]]]] = [
    (
        "CJ assessment service",
        [
            ("Batches by state", "sum by (state) (huleedu_cj_batches)", "short"),
            ("Batches finished /min", "sum by (state, reason) (rate(huleedu_cj_batches_finished_total[5m])) * 60", "short"),
            ("Callbacks /s by outcome", "sum by (outcome) (rate(huleedu_cj_callbacks_processed_total[1m]))", "reqps"),
            ("Callback latency p95", "histogram_quantile(0.95, sum by (le) (rate(huleedu_cj_callback_latency_seconds_bucket[5m])))", "s"),
            ("Comparisons pending", "sum(huleedu_cj_comparisons_pending)", "short"),
            ("Planning steps per batch (p50)", "histogram_quantile(0.5, sum by (le) (rate(huleedu_cj_batch_waves_bucket[30m])))", "short"),
            ("Stop-rule reliability (p50)", "histogram_quantile(0.5, sum by (le) (rate(huleedu_cj_stop_reliability_bucket[30m])))", "short"),
            ("Stuck batches detected (1h)", "sum(increase(huleedu_cj_stuck_batches_detected_total[1h]))", "short"),
            ("Orphan callbacks /min", "sum(rate(huleedu_cj_orphan_callbacks_total[5m])) * 60", "short"),
        ],
    ),
    (
        "LLM provider service",
        [
            ("Requests /s by provider and outcome", "sum by (provider, outcome) (rate(huleedu_llm_requests_total[1m]))", "reqps"),
            ("Latency p95 by provider", "histogram_quantile(0.95, sum by (le, provider) (rate(huleedu_llm_request_duration_seconds_bucket[5m])))", "s"),
            ("In-flight requests", "sum(huleedu_llm_in_flight_requests)", "short"),
            ("Tokens /min", "sum by (provider, direction) (rate(huleedu_llm_tokens_total[5m])) * 60", "short"),
            ("Estimated cost (USD, 24h)", "sum by (provider, model) (increase(huleedu_llm_estimated_cost_usd_total[24h]))", "currencyUSD"),
            ("Spend in the last hour vs budget (USD)", ("sum(increase(huleedu_llm_estimated_cost_usd_total[1h]))", "max(huleedu_llm_spend_alert_usd_per_hour > 0)"), "currencyUSD"),
            ("Rate-limit waits /min", "sum by (provider) (rate(huleedu_llm_rate_limit_waits_total[5m])) * 60", "short"),
            ("Circuit state (0 closed, 1 half-open, 2 open)", "max by (provider) (huleedu_llm_circuit_state)", "short"),
            ("Injection suspected /h", "sum by (kind) (increase(huleedu_llm_injection_suspected_total[1h]))", "short"),
        ],
    ),
    (
        "Submission service",
        [
            ("Completions triggered /min", "sum(rate(huleedu_submission_completions_triggered_total[5m])) * 60", "short"),
            ("Rubric results /min", "sum(rate(huleedu_submission_rubric_results_total[5m])) * 60", "short"),
            ("Assessment submissions /min", "sum by (outcome) (rate(huleedu_submission_assessment_submissions_total[5m])) * 60", "short"),
            ("Webhook deliveries /min", "sum by (outcome) (rate(huleedu_submission_webhook_delivery_attempts_total[5m])) * 60", "short"),
            ("Webhook deliveries given up or refused (1h)", "sum by (outcome) (increase(huleedu_submission_webhook_delivery_attempts_total{outcome=~\"failed|refused\"}[1h]))", "short"),
        ],
    ),
    (
        "HTTP API and database pool (all services)",
        [
            ("HTTP requests /s by service and status", "sum by (job, status) (rate(huleedu_http_requests_total[1m]))", "reqps"),
            ("HTTP 5xx share by service", "sum by (job) (rate(huleedu_http_requests_total{status=~\"5..\"}[5m])) / sum by (job) (rate(huleedu_http_requests_total[5m]))", "percentunit"),
            ("HTTP latency p95 by route", "histogram_quantile(0.95, sum by (le, job, route) (rate(huleedu_http_request_duration_seconds_bucket[5m])))", "s"),
            ("HTTP requests /s by route", "sum by (job, method, route) (rate(huleedu_http_requests_total[1m]))", "reqps"),
            ("Database pool in use (share of capacity)", "max by (job, instance) (huleedu_db_pool_connections_checked_out / huleedu_db_pool_connections_capacity)", "percentunit"),
            ("Database connections checked out", "sum by (job, instance) (huleedu_db_pool_connections_checked_out)", "short"),
        ],
    ),
    (
        "Shared runtime (all services)",
        [
            ("Outbox lag (s)", "max by (job) (huleedu_outbox_lag_seconds)", "s"),
            ("Outbox published /s", "sum by (job) (rate(huleedu_outbox_published_total[1m]))", "reqps"),
            ("Outbox publish delay p95", "histogram_quantile(0.95, sum by (le, job) (rate(huleedu_outbox_publish_delay_seconds_bucket[5m])))", "s"),
            ("Dead-lettered /min", "sum by (job, topic, code) (rate(huleedu_dead_lettered_total[5m])) * 60", "short"),
            ("Consumer messages /s", "sum by (job, outcome) (rate(huleedu_consumer_messages_total[1m]))", "reqps"),
            ("Consumer rebalances (1h)", "sum by (job, group) (increase(huleedu_consumer_rebalances_total[1h]))", "short"),
            ("Event-loop lag p99", "histogram_quantile(0.99, sum by (le, job) (rate(huleedu_event_loop_lag_seconds_bucket[5m])))", "s"),
            ("Event-loop lag, worst since start", "max by (job) (huleedu_event_loop_lag_max_seconds)", "s"),
            ("Compute time share by kind", "sum by (job, kind) (rate(huleedu_compute_seconds_sum[5m]))", "percentunit"),
            ("Compute wait p95 by kind", "histogram_quantile(0.95, sum by (le, kind) (rate(huleedu_compute_wait_seconds_bucket[5m])))", "s"),
            ("Targets up", "up", "short"),
        ],
    ),
]  # fmt: skip


def build() -> dict[str, Any]:
    """The dashboard model."""
    panels: list[dict[str, Any]] = []
    y = 0
    panel_id = 1
    for title, charts in ROWS:
        panels.append(
            {
                "type": "row",
                "title": title,
                "id": panel_id,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        panel_id += 1
        y += 1
        for index, (name, query, unit) in enumerate(charts):
            queries = query if isinstance(query, tuple) else (query,)
            panels.append(
                {
                    "type": "timeseries",
                    "title": name,
                    "id": panel_id,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": 8, "w": 8, "x": (index % 3) * 8, "y": y + (index // 3) * 8},
                    "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(ord("A") + n), "expr": expr, "datasource": DATASOURCE}
                        for n, expr in enumerate(queries)
                    ],
                }
            )
            panel_id += 1
        y += ((len(charts) + 2) // 3) * 8
    return {
        "uid": "huleedu-overview",
        "title": "HuleEdu services",
        "tags": ["huleedu"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
