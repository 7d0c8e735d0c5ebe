"""The AsyncAPI 3.0.0 document of every topic, built from the `common_core` models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from common_core.events.envelope import RawEnvelope, envelope_type
from common_core.events.registry import PAYLOAD_BY_TOPIC
from common_core.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name
from contract_docs.topics import EXAMPLE_TIME, PARTIES, Example, example_id

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{model}"
DEAD_LETTER_CHANNEL = "deadLetters"

_ENVELOPE_HEADERS = "EnvelopeHeaders"
_DEAD_LETTER_HEADERS = "DeadLetterHeaders"


def channel_id(topic: Topic) -> str:
    """The channel id of a topic: its full name under the default prefix."""
    return topic_name(topic)


def envelope_schema_name(model: type[BaseModel]) -> str:
    """The component name of `EventEnvelope[model]`."""
    return f"{model.__name__}Envelope"


def build_asyncapi() -> dict[str, Any]:
    """The whole document: channels, operations and components for every registered topic."""
    schemas: dict[str, Any] = {
        _ENVELOPE_HEADERS: _envelope_headers_schema(),
        _DEAD_LETTER_HEADERS: _dead_letter_headers_schema(),
    }
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in Topic:
        model = PAYLOAD_BY_TOPIC[topic]
        _add_schemas(schemas, _envelope_schema(model))
        messages[model.__name__] = _message(topic, model)
        channels[channel_id(topic)] = _channel(topic, model)
        operations.update(_operations(topic, model))
    messages["DeadLetter"] = _dead_letter_message()
    channels[DEAD_LETTER_CHANNEL] = _dead_letter_channel()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "HuleEdu events",
            "version": "1.0.0",
            "description": (
                "Every Kafka topic of the HuleEdu services. Each message is one UTF-8 JSON "
                "`EventEnvelope` whose `data` is the topic's payload; see docs/contracts.md for "
                "the envelope, keys, versioning rules, error model and limits. Topic names carry "
                f"a configurable prefix (`TOPIC_PREFIX`, default `{DEFAULT_TOPIC_PREFIX}`)."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The local stack's broker (`make stack-up`).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "correlationIds": {
                "envelope": {
                    "description": "The request's correlation id, carried end to end.",
                    "location": "$message.payload#/correlation_id",
                }
            },
        },
    }


def _envelope_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = envelope_type(model).model_json_schema(ref_template=SCHEMA_REF)
    name = envelope_schema_name(model)
    schema["title"] = name
    # A producer always writes these; the model only fills them in for a new event.
    schema["required"] = RawEnvelope.model_json_schema()["required"]
    definitions = schema.pop("$defs", {})
    return {**definitions, name: schema}


def _add_schemas(schemas: dict[str, Any], new: dict[str, Any]) -> None:
    for name, schema in new.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")


def _message(topic: Topic, model: type[BaseModel]) -> dict[str, Any]:
    parties = PARTIES[topic]
    return {
        "name": model.__name__,
        "title": model.__name__,
        "summary": _first_line(model.__doc__),
        "contentType": "application/json",
        "headers": {"$ref": f"#/components/schemas/{_ENVELOPE_HEADERS}"},
        "payload": {"$ref": SCHEMA_REF.format(model=envelope_schema_name(model))},
        "correlationId": {"$ref": "#/components/correlationIds/envelope"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"The message key: {parties.key}."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [_example(topic, model, example) for example in parties.examples],
    }


def _example(topic: Topic, model: type[BaseModel], example: Example) -> dict[str, Any]:
    name = topic_name(topic)
    envelope = envelope_type(model)(
        event_id=example_id(f"{name}/{example.name}"),
        event_type=name,
        event_timestamp=EXAMPLE_TIME,
        source_service=PARTIES[topic].producer,
        correlation_id=example_id("correlation"),
        data=example.payload,
    )
    return {
        "name": example.name,
        "summary": f"{example.summary} (key {example.key!r})",
        "headers": {
            "event_type": envelope.event_type,
            "event_id": str(envelope.event_id),
            "correlation_id": str(envelope.correlation_id),
        },
        "payload": envelope.model_dump(mode="json"),
    }


def _channel(topic: Topic, model: type[BaseModel]) -> dict[str, Any]:
    parties = PARTIES[topic]
    consumers = ", ".join(parties.consumers) or "any interested service (none in this repository)"
    return {
        "address": topic_name(topic),
        "title": topic.name,
        "description": (
            f"`{model.__name__}` in an `EventEnvelope`. Producer: {parties.producer}. "
            f"Consumers: {consumers}. Key: {parties.key}. {parties.note}"
        ).strip(),
        "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
    }


def _operations(topic: Topic, model: type[BaseModel]) -> dict[str, Any]:
    parties = PARTIES[topic]
    channel = {"$ref": f"#/channels/{channel_id(topic)}"}
    message = [{"$ref": f"#/channels/{channel_id(topic)}/messages/{model.__name__}"}]
    operations = {
        f"{parties.producer}.send.{topic.name.lower()}": {
            "action": "send",
            "channel": channel,
            "messages": message,
            "summary": f"{parties.producer} publishes {model.__name__}.",
        }
    }
    for consumer in parties.consumers:
        operations[f"{consumer}.receive.{topic.name.lower()}"] = {
            "action": "receive",
            "channel": channel,
            "messages": message,
            "summary": f"{consumer} consumes {model.__name__}.",
        }
    return operations


def _envelope_headers_schema() -> dict[str, Any]:
    uuid = {"type": "string", "format": "uuid"}
    return {
        "type": "object",
        "description": "Headers every producer sets; they repeat envelope fields for routing.",
        "properties": {
            "event_type": {"type": "string", "description": "The envelope's `event_type`."},
            "event_id": {**uuid, "description": "The envelope's `event_id`."},
            "correlation_id": {**uuid, "description": "The envelope's `correlation_id`."},
        },
        "required": ["event_type", "event_id", "correlation_id"],
    }


def _dead_letter_headers_schema() -> dict[str, Any]:
    text = {"type": "string"}
    integer = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "type": "object",
        "description": (
            "The error headers of a dead-lettered message; the original message's own headers "
            "follow them unchanged."
        ),
        "properties": {
            "x-dlq-error-code": {**text, "description": "Why the message was refused."},
            "x-dlq-attempts": {**integer, "description": "How many times it was tried."},
            "x-dlq-error-message": {
                **text,
                "description": "The reason, cut to 1000 characters.",
            },
            "x-dlq-original-topic": text,
            "x-dlq-original-partition": integer,
            "x-dlq-original-offset": integer,
            "x-dlq-consumer-group": text,
            "x-dlq-failed-at": {**text, "format": "date-time"},
        },
        "required": [
            "x-dlq-error-code",
            "x-dlq-attempts",
            "x-dlq-error-message",
            "x-dlq-original-topic",
            "x-dlq-original-partition",
            "x-dlq-original-offset",
            "x-dlq-consumer-group",
            "x-dlq-failed-at",
        ],
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a consumer could not process: the original bytes and key.",
        "contentType": "application/octet-stream",
        "headers": {"$ref": f"#/components/schemas/{_DEAD_LETTER_HEADERS}"},
        "payload": {
            "description": "The original message value, byte for byte (it may be unreadable)."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _dead_letter_channel() -> dict[str, Any]:
    return {
        "address": "{topic}.dlq",
        "title": "Dead letters",
        "description": (
            "Each consumed topic's dead-letter topic. The CLI lists and replays them "
            "(`huleedu dlq`)."
        ),
        "parameters": {
            "topic": {"description": "The full name of the topic the message was consumed from."}
        },
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""
