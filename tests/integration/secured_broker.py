"""The secured broker the SASL_SSL tests share: its users and the prefix their ACLs cover."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.kafka_secured import SecuredKafka

CJ_USER = "cj"
LLM_USER = "llm"
CLI_USER = "cli"
UNGRANTED_USER = "ungranted"


@dataclass(frozen=True)
class SecuredBroker:
    """A secured broker and the topic prefix its service users' ACLs cover."""

    kafka: SecuredKafka
    topic_prefix: str
