"""The contract documents under docs/contracts/: current, valid, complete, with valid examples.

They are generated from the code (`make contracts`); these tests fail when the committed files
differ from what the code generates now, when a document breaks its specification (AsyncAPI
3.0.0 through its vendored JSON schema, OpenAPI through openapi-spec-validator), when a topic of
`common_core` is missing, or when an example does not match its own schema.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from common_core.events import PAYLOAD_BY_TOPIC, decode_event
from common_core.topics import Topic, topic_name
from contract_docs import (
    ASYNCAPI_PATH,
    ASYNCAPI_SCHEMA_PATH,
    OPENAPI_DIR,
    SERVICES,
    generated_documents,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@cache
def _generated() -> dict[Path, str]:
    return generated_documents()


def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / ASYNCAPI_PATH).read_text("utf-8"))
    return document


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = _asyncapi()["components"]["messages"]
    return messages


def _validator(document: dict[str, Any], ref: str) -> Draft202012Validator:
    """A validator of one schema of the document, its `$ref`s resolved within the document."""
    return Draft202012Validator(
        {"$ref": ref, "components": document["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


class TestCommittedDocumentsAreCurrent:
    @pytest.mark.parametrize(
        "relative",
        [ASYNCAPI_PATH, *(OPENAPI_DIR / f"{service}.json" for service in SERVICES)],
        ids=str,
    )
    def test_the_committed_document_equals_what_the_code_generates(self, relative: Path) -> None:
        committed = REPO_ROOT / relative
        assert committed.exists(), f"{relative} is missing: run make contracts"
        text, expected = committed.read_text("utf-8"), _generated()[relative]
        diff = difflib.unified_diff(
            text.splitlines(), expected.splitlines(), "committed", "generated", lineterm="", n=1
        )
        assert text == expected, (
            f"{relative} differs from what the code generates: run make contracts\n"
            + "\n".join(list(diff)[:40])
        )


class TestAsyncAPIDocument:
    def test_it_validates_against_the_vendored_asyncapi_3_schema(self) -> None:
        schema = json.loads((REPO_ROOT / ASYNCAPI_SCHEMA_PATH).read_text("utf-8"))
        errors = [
            f"{list(e.absolute_path)}: {e.message}"
            for e in Draft7Validator(schema).iter_errors(_asyncapi())
        ]
        assert errors == []

    def test_the_vendored_schema_refuses_an_invalid_document(self) -> None:
        schema = json.loads((REPO_ROOT / ASYNCAPI_SCHEMA_PATH).read_text("utf-8"))
        document = _asyncapi()
        next(iter(document["operations"].values()))["action"] = "publish"  # AsyncAPI 2 wording
        assert not Draft7Validator(schema).is_valid(document)

    @pytest.mark.parametrize("topic", list(Topic), ids=lambda topic: topic.name)
    def test_every_topic_is_a_channel_carrying_its_payload_model(self, topic: Topic) -> None:
        document = _asyncapi()
        addresses = {channel["address"]: channel for channel in document["channels"].values()}
        channel = addresses[topic_name(topic)]
        assert list(channel["messages"]) == [PAYLOAD_BY_TOPIC[topic].__name__]

    @pytest.mark.parametrize("topic", list(Topic), ids=lambda topic: topic.name)
    def test_every_topic_has_a_producer_and_a_key(self, topic: Topic) -> None:
        document = _asyncapi()
        model = PAYLOAD_BY_TOPIC[topic].__name__
        sends = [
            operation
            for operation in document["operations"].values()
            if operation["action"] == "send"
            and operation["channel"]["$ref"].endswith(f"/{topic_name(topic)}")
        ]
        assert len(sends) == 1
        assert document["components"]["messages"][model]["bindings"]["kafka"]["key"]["description"]

    def test_dead_letters_have_their_own_channel_with_error_headers(self) -> None:
        document = _asyncapi()
        channel = document["channels"]["deadLetters"]
        headers = document["components"]["schemas"]["DeadLetterHeaders"]
        assert channel["address"] == "{topic}.dlq"
        assert "x-dlq-error-code" in headers["required"]


class TestAsyncAPIExamples:
    @pytest.mark.parametrize("topic", list(Topic), ids=lambda topic: topic.name)
    def test_every_example_matches_its_payload_and_header_schemas(self, topic: Topic) -> None:
        document = _asyncapi()
        message = document["components"]["messages"][PAYLOAD_BY_TOPIC[topic].__name__]
        payload = _validator(document, message["payload"]["$ref"])
        headers = _validator(document, message["headers"]["$ref"])
        assert message["examples"]
        for example in message["examples"]:
            assert _errors(payload, example["payload"]) == [], example["name"]
            assert _errors(headers, example["headers"]) == [], example["name"]

    @pytest.mark.parametrize("topic", list(Topic), ids=lambda topic: topic.name)
    def test_every_example_decodes_with_the_topics_model(self, topic: Topic) -> None:
        model = PAYLOAD_BY_TOPIC[topic]
        for example in _messages()[model.__name__]["examples"]:
            envelope = decode_event(json.dumps(example["payload"]), model)
            assert envelope.event_type == topic_name(topic)
            assert str(envelope.event_id) == example["headers"]["event_id"]

    def test_an_envelope_without_its_data_is_refused_by_the_schema(self) -> None:
        document = _asyncapi()
        message = document["components"]["messages"]["CJAssessmentRequestV1"]
        example = dict(message["examples"][0]["payload"])
        del example["data"]
        assert _errors(_validator(document, message["payload"]["$ref"]), example) != []


class TestOpenAPIDocuments:
    @pytest.mark.parametrize("service", SERVICES)
    def test_it_validates_with_openapi_spec_validator(self, service: str) -> None:
        document = json.loads((REPO_ROOT / OPENAPI_DIR / f"{service}.json").read_text("utf-8"))
        validate_openapi(document)

    @pytest.mark.parametrize("service", SERVICES)
    def test_it_documents_liveness_and_readiness(self, service: str) -> None:
        document = json.loads((REPO_ROOT / OPENAPI_DIR / f"{service}.json").read_text("utf-8"))
        assert {"/healthz", "/healthz/ready"} <= set(document["paths"])
