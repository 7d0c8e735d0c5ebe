"""LLM provider service benchmark: callback throughput against a fake 200 ms provider."""
