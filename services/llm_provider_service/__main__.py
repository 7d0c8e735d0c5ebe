"""`python -m llm_provider_service`: the HTTP app and the Kafka workers in one process."""

from __future__ import annotations

from common_core.runtime.kernel import run_main
from llm_provider_service.entrypoints.runtime import SERVICE

if __name__ == "__main__":
    run_main(SERVICE)
