"""Prometheus metrics of the LLM provider service (documented in README.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "huleedu_llm_requests_total",
    "Requests answered, by provider, model, kind (comparison, rubric) and outcome "
    "(success or the error code).",
    ["provider", "model", "kind", "outcome"],
)
REQUEST_DURATION = Histogram(
    "huleedu_llm_request_duration_seconds",
    "Time from taking a request to having its answer (retries and waits included).",
    ["provider", "kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
)
TOKENS = Counter(
    "huleedu_llm_tokens_total",
    "Tokens consumed, by provider, model, mode (sync, batch) and direction (prompt, completion; "
    "cached_prompt and cache_write count prompt tokens read from / written to the prompt cache).",
    ["provider", "model", "mode", "direction"],
)
ESTIMATED_COST = Counter(
    "huleedu_llm_estimated_cost_usd_total",
    "Estimated spend in US dollars from the dated price table, by provider, model and mode.",
    ["provider", "model", "mode"],
)
SPEND_ALERT_USD_PER_HOUR = Gauge(
    "huleedu_llm_spend_alert_usd_per_hour",
    "The spend budget LLM_SPEND_ALERT_USD_PER_HOUR: the LLMSpendOverBudget alert fires when the "
    "estimated cost of the last hour exceeds it (0: not set, no alert).",
)
UNPRICED_RESULTS = Counter(
    "huleedu_llm_unpriced_results_total",
    "Results whose model has no price in the price table (their estimated cost is null).",
    ["provider", "model", "mode"],
)
ANSWER_TOKENS = Histogram(
    "huleedu_llm_answer_tokens",
    "Completion tokens of each answered request, by provider and kind: the measured answer "
    "lengths the per-kind answer budgets (LLM_COMPARISON_MAX_TOKENS, LLM_RUBRIC_MAX_TOKENS) "
    "are sized from.",
    ["provider", "kind"],
    buckets=(16, 32, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096),
)
IN_FLIGHT = Gauge(
    "huleedu_llm_in_flight_requests",
    "Requests taken from Kafka whose callback is not yet acknowledged.",
)
PROVIDER_ATTEMPTS = Counter(
    "huleedu_llm_provider_attempts_total",
    "Calls to a provider's API, by outcome (success, rate_limited, server_error, timeout, "
    "malformed, rejected).",
    ["provider", "outcome"],
)
RATE_LIMIT_WAITS = Counter(
    "huleedu_llm_rate_limit_waits_total",
    "Calls that had to wait for the service's own rate limiter, by provider and limit "
    "(requests, tokens).",
    ["provider", "limit"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "huleedu_llm_rate_limit_wait_seconds_total",
    "Time spent waiting for the service's own rate limiter.",
    ["provider"],
)
CIRCUIT_STATE = Gauge(
    "huleedu_llm_circuit_state",
    "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
    ["provider"],
)
INJECTION_SUSPECTED = Counter(
    "huleedu_llm_injection_suspected_total",
    "Requests whose text contained instruction-like text aimed at the judge.",
    ["kind"],
)
VERDICT_PROBABILITIES = Counter(
    "huleedu_llm_verdict_probabilities_total",
    "Comparison verdicts with and without the judge's probability (probability_essay_a_better).",
    ["provider", "mode", "outcome"],
)
CALLBACKS_PUBLISHED = Counter(
    "huleedu_llm_callbacks_published_total",
    "Callback events acknowledged by the broker, by kind.",
    ["kind"],
)
BATCH_REQUESTS = Counter(
    "huleedu_llm_batch_requests_total",
    "Batch-mode requests taken from Kafka, by provider and outcome (queued, or duplicate: a "
    "redelivered request already recorded).",
    ["provider", "outcome"],
)
PROVIDER_BATCHES = Counter(
    "huleedu_llm_provider_batches_total",
    "Provider batches, by provider and event: submitted, reconciled (found at the provider after "
    "a lost submission), refused, and how they ended (completed, expired, cancelled, failed).",
    ["provider", "event"],
)
PROVIDER_BATCH_POLLS = Counter(
    "huleedu_llm_provider_batch_polls_total",
    "Status checks of submitted provider batches, by provider and result (running, ended, error).",
    ["provider", "result"],
)
