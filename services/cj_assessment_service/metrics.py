"""Prometheus metrics of the CJ assessment service (documented in the service README)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLBACKS_PROCESSED = Counter(
    "huleedu_cj_callbacks_processed_total",
    "Comparison callbacks handled, by outcome "
    "(recorded, failed, retried, duplicate, late, orphan, hedge_loser, hedge_error).",
    ["outcome"],
)
CALLBACK_LATENCY = Histogram(
    "huleedu_cj_callback_latency_seconds",
    "Time from a comparison request being staged to its callback being recorded.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
ORPHAN_CALLBACKS = Counter(
    "huleedu_cj_orphan_callbacks_total",
    "Callbacks whose request id matches no comparison pair (acknowledged, nothing stored).",
)
HEDGED_REQUESTS = Counter(
    "huleedu_cj_hedged_requests_total",
    "Stragglers asked a second time (hedged requests) in a batch's tail.",
)
BATCHES_BY_STATE = Gauge(
    "huleedu_cj_batches", "Batches per state, as counted at the monitor's last pass.", ["state"]
)
BATCHES_FINISHED = Counter(
    "huleedu_cj_batches_finished_total",
    "Batches that reached a terminal state, by state and reason.",
    ["state", "reason"],
)
BATCH_PROGRESS = Histogram(
    "huleedu_cj_batch_progress_ratio",
    "Share of the comparison budget answered when a batch finished.",
    buckets=(0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0),
)
COMPARISONS_PENDING = Gauge(
    "huleedu_cj_comparisons_pending",
    "Comparisons requested and not yet answered across live batches (monitor's last pass).",
)
WAVES_PER_BATCH = Histogram(
    "huleedu_cj_batch_waves",
    "Planning steps (opening pairs, then each top-up) a batch used before it was scored.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
STOP_RELIABILITY = Histogram(
    "huleedu_cj_stop_reliability",
    "The stop rule's reliability estimate (split-half) at each check.",
    buckets=(0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98),
)
STUCK_BATCHES_DETECTED = Counter(
    "huleedu_cj_stuck_batches_detected_total", "Batches the monitor found without activity."
)
STUCK_BATCHES_RECOVERED = Counter(
    "huleedu_cj_stuck_batches_recovered_total", "Stuck batches scored by forced recovery."
)
STUCK_BATCHES_FAILED = Counter(
    "huleedu_cj_stuck_batches_failed_total", "Stuck batches failed below the recovery threshold."
)
PARTIAL_SCORING_TRIGGERED = Counter(
    "huleedu_cj_partial_scoring_total",
    "Batches scored after the completion threshold and grace period.",
)
REQUESTS_HANDLED = Counter(
    "huleedu_cj_requests_total",
    "CJ assessment requests, by outcome (accepted, duplicate, invalid, insufficient).",
    ["outcome"],
)
ESSAY_SET_UPLOADS = Counter(
    "huleedu_cj_essay_set_uploads_total",
    "Essay-set uploads (POST /api/v1/essay-sets), by outcome (stored, invalid, too_large).",
    ["outcome"],
)
ESSAY_SET_ESSAYS = Counter(
    "huleedu_cj_essay_set_essays_total", "Essays stored by accepted essay-set uploads."
)
ESSAY_SETS_EXPIRED = Counter(
    "huleedu_cj_essay_sets_expired_total",
    "Essay sets deleted after ESSAY_SET_RETENTION_SECONDS.",
)
HUMAN_PAIRS = Counter(
    "huleedu_cj_human_pairs_total",
    "Comparisons given to human judges (assigned) and released unjudged at their deadline.",
    ["outcome"],
)
HUMAN_VERDICTS = Counter(
    "huleedu_cj_human_verdicts_total",
    "Human judges' actions on the judging page, by outcome (accepted, duplicate, "
    "not_assigned, released, skipped, bad_link).",
    ["outcome"],
)
