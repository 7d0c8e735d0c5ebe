"""`python -m submission_service`: the HTTP API plus its Kafka and webhook workers."""

from __future__ import annotations

from common_core.runtime.kernel import run_main
from submission_service.entrypoints.runtime import SERVICE

if __name__ == "__main__":
    run_main(SERVICE)
