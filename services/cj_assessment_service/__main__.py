"""`python -m cj_assessment_service`: HTTP app, request and callback consumers, outbox relay and
batch monitor in one process; migrations and topics are ensured at start."""

from __future__ import annotations

from cj_assessment_service.entrypoints.runtime import SERVICE
from common_core.runtime.kernel import run_main

if __name__ == "__main__":
    run_main(SERVICE)
