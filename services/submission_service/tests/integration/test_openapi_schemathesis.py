"""schemathesis against /openapi.json of `python -m submission_service` with a fixed budget.

Positive mode (data that fits the document): no server errors and no status codes, content types
or bodies the document does not describe. Negative mode (data that violates it): no server errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack import free_port
from submission_service.testing.harness import (
    TEST_JWT_SECRET,
    TEST_WEBHOOK_SECRET_KEY,
    user_token,
)
from submission_service.testing.process import service_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES_PER_OPERATION = 25
CONFORMANCE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def service_url(database_url: str, kafka_bootstrap_servers: str) -> Iterator[str]:
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": f"st{uuid.uuid4().hex[:12]}",
        "TOPIC_PARTITIONS": "1",
        "JWT_SECRET": TEST_JWT_SECRET,
        "WEBHOOK_SECRET_KEYS": TEST_WEBHOOK_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    with service_process("submission_service", env, free_port()) as url:
        yield url


def _run(service_url: str, mode: GenerationMode, checks: list[Callable[..., Any]]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json")
    headers = {
        "Authorization": f"Bearer {user_token('schemathesis-user')}",
        "X-Anonymous-Token": str(uuid.uuid4()),
    }
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=service_url, headers=headers, timeout=15)
            case.validate_response(response, checks=checks)

        exercise()
        tested.append(operation.label)
    return tested


def test_api_conforms_to_its_openapi_document(service_url: str) -> None:
    tested = _run(service_url, GenerationMode.POSITIVE, CONFORMANCE_CHECKS)
    assert "POST /api/assessments/{assessment_id}/submit" in tested
    assert len(tested) >= 10


def test_invalid_requests_never_cause_server_errors(service_url: str) -> None:
    tested = _run(service_url, GenerationMode.NEGATIVE, [not_a_server_error])
    assert len(tested) >= 10
