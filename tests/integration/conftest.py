"""The secured broker (SASL_SSL, SCRAM users, ACLs) for the tests that need it."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.kafka_secured import new_user, start_secured_kafka
from tests.integration.secured_broker import (
    CJ_USER,
    CLI_USER,
    LLM_USER,
    UNGRANTED_USER,
    SecuredBroker,
)


@pytest.fixture(scope="session")
def secured_broker() -> Iterator[SecuredBroker]:
    """A broker whose only client listener is SASL_SSL, started on first use, stopped by PID.

    Users: `cj` and `llm` (topics under the prefix, their service's consumer groups), `cli`
    (topics under the prefix, no group: it reads by assignment) and `ungranted` (no ACL).
    """
    prefix = f"sec{uuid.uuid4().hex[:8]}"
    users = [
        new_user(CJ_USER, topic_prefix=f"{prefix}.", group_prefixes=["cj_assessment_service"]),
        new_user(LLM_USER, topic_prefix=f"{prefix}.", group_prefixes=["llm_provider_service"]),
        new_user(CLI_USER, topic_prefix=f"{prefix}."),
        new_user(UNGRANTED_USER),
    ]
    state_dir = Path(tempfile.mkdtemp(prefix="devstack-kafka-secured-"))
    try:
        kafka = start_secured_kafka(state_dir, users, die_with_parent=True)
        try:
            yield SecuredBroker(kafka, prefix)
        finally:
            kafka.process.stop()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
