"""Test support shipped with the service: a fake OpenAI/Anthropic HTTP server, sample essays,
request builders (used by the tests and benchmarks/llm_provider) and texts that game the
heuristic judge."""
