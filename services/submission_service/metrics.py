"""Prometheus metrics of the submission service (documented in README.md)."""

from __future__ import annotations

from prometheus_client import Counter

# HTTP request metrics are common_core's (huleedu_http_*, common_core.runtime.http_metrics).
RESPONSES_WRITTEN = Counter(
    "huleedu_submission_responses_written_total",
    "Answers created or updated through the API.",
    ["operation"],
)
COMPLETIONS_TRIGGERED = Counter(
    "huleedu_submission_completions_triggered_total",
    "Answers whose completion triggered a rubric scoring request.",
)
RUBRIC_RESULTS = Counter(
    "huleedu_submission_rubric_results_total",
    "Rubric result callbacks handled, by outcome (scored, failed, duplicate, unknown_request, "
    "already_finished).",
    ["outcome"],
)
ASSESSMENT_SUBMISSIONS = Counter(
    "huleedu_submission_assessment_submissions_total",
    "Assessment submit calls, by outcome (submitted, replayed, conflict).",
    ["outcome"],
)
WEBHOOK_DELIVERY_ATTEMPTS = Counter(
    "huleedu_submission_webhook_delivery_attempts_total",
    "Webhook delivery attempts, by outcome (delivered, retry, failed, refused).",
    ["outcome"],
)
# Every outcome exported at 0 from the start, so increase() sees a first failure (a labelled
# series born at 1 shows none) and WebhookDeliveriesFailing fires on it.
for _outcome in ("delivered", "retry", "failed", "refused"):
    WEBHOOK_DELIVERY_ATTEMPTS.labels(outcome=_outcome)
ESSAY_FUSIONS = Counter(
    "huleedu_submission_essay_fusions_total",
    "Essay answers fused from their stage scores, by outcome (agreed, disagreement: gpt and rag "
    "more than a point apart, degraded: a stage skipped or failed, failed: no LLM stage scored).",
    ["outcome"],
)
RAG_RETRIEVALS = Counter(
    "huleedu_submission_rag_retrievals_total",
    "Reference-passage retrievals for the rag stage, by outcome (matched: full-text search "
    "found passages, fallback: the question's first passages, no_material: rag skipped).",
    ["outcome"],
)
