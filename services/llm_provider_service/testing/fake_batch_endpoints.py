"""The batch endpoints of the fake LLM server: OpenAI files + batches and Anthropic message
batches, enough for the official SDKs, with scripted latency, per-item errors and endings.

OpenAI: `POST /v1/files` (multipart JSONL upload), `POST /v1/batches`, `GET /v1/batches`,
`GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`, `GET /v1/files/{id}/content`.
Anthropic: `POST /v1/messages/batches`, `GET /v1/messages/batches`,
`GET /v1/messages/batches/{id}`, `POST /v1/messages/batches/{id}/cancel`,
`GET /v1/messages/batches/{id}/results`.

A batch runs until `latency` seconds after its creation (and while `held`), then ends as the
script says. Its items run in the order the batch lists them, each billed by `bill` (the fake
server's prompt cache, as a synchronous call would be, so an item reads what earlier items
wrote): `completed` (every item answered, or its scripted error), `expired` or `cancelled`
(the first `answered_before_end` items answered, the rest expired / cancelled) or, for OpenAI,
`failed` (the input refused, no results).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llm_provider_service.testing.fake_logprobs import choice_logprobs

# (status, body, content type) of one HTTP answer.
RawReply = tuple[int, bytes, str]
ItemStatus = Callable[[str, int], int | None]
Answer = Callable[[dict[str, Any]], "FakeAnswer"]
# The usage object of one item (the path of its synchronous twin, its body), billed when it runs.
Bill = Callable[[str, dict[str, Any]], dict[str, Any]]

_JSON = "application/json"
_BATCH_PATH = re.compile(r"^/v1/batches/([^/?]+)(/cancel)?$")
_FILE_CONTENT = re.compile(r"^/v1/files/([^/?]+)/content$")
_MESSAGE_BATCH = re.compile(r"^/v1/messages/batches/([^/?]+)(/cancel|/results)?$")


@dataclass(frozen=True)
class FakeAnswer:
    """A batch item's answer text and the judge's P(essay A is better) (None: certain), which
    the item's `logprobs` carry when its body asks for them."""

    content: str
    probability: float | None = None


def no_item_errors(_custom_id: str, _index: int) -> int | None:
    """Every item is answered."""
    return None


@dataclass
class BatchScript:
    """How the fake's batches behave (mutable: a test may change it while batches run)."""

    latency: float = 0.0
    held: bool = False
    end: str = "completed"
    answered_before_end: int = 0
    item_status: ItemStatus = no_item_errors


@dataclass
class _Batch:
    provider: str
    id: str
    created: float
    created_at: datetime
    items: list[tuple[str, dict[str, Any]]]
    metadata: dict[str, str]
    input_file_id: str | None = None
    cancelled: bool = False
    results: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended_at: datetime | None = None
    end: str | None = None


@dataclass
class FakeBatchEndpoints:
    """State and routes of the fake's batch APIs; `created` lists every batch created."""

    answer: Answer
    bill: Bill
    script: BatchScript = field(default_factory=BatchScript)
    base_url: str = ""
    created: list[tuple[str, str, int]] = field(default_factory=list)
    _files: dict[str, bytes] = field(default_factory=dict)
    _batches: dict[str, _Batch] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Ids are unique across fake servers, as a provider's are: a service whose database outlives
    # one fake (a benchmark's next run) must never see a batch id again.
    _id_prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> RawReply | None:
        """The answer to a batch-API request, or None when the path is not one."""
        route = path.split("?", 1)[0]
        if route.startswith("/v1/messages/batches"):
            return self._anthropic_route(method, route, raw)
        return self._openai_route(method, route, headers, raw)

    def _openai_route(
        self, method: str, route: str, headers: dict[str, str], raw: bytes
    ) -> RawReply | None:
        if route == "/v1/files" and method == "POST":
            return self._upload(headers, raw)
        if route == "/v1/batches":
            return self._create_openai(raw) if method == "POST" else self._list("openai")
        if match := _FILE_CONTENT.match(route):
            content = self._files.get(match.group(1))
            return (200, content, "application/jsonl") if content is not None else _missing()
        if match := _BATCH_PATH.match(route):
            return self._one("openai", match.group(1), cancel=bool(match.group(2)))
        return None

    def _anthropic_route(self, method: str, route: str, raw: bytes = b"") -> RawReply | None:
        if route == "/v1/messages/batches":
            return self._create_anthropic(raw) if method == "POST" else self._list("anthropic")
        if match := _MESSAGE_BATCH.match(route):
            suffix = match.group(2)
            if suffix == "/results":
                return self._anthropic_results(match.group(1))
            return self._one("anthropic", match.group(1), cancel=suffix == "/cancel")
        return None

    def custom_ids(self, batch_id: str) -> list[str]:
        """The custom ids (request ids) of a created batch's items, in its order."""
        return [custom_id for custom_id, _ in self._batches[batch_id].items]

    # creation

    def _new_id(self, kind: str) -> str:
        return f"{kind}{self._id_prefix}{next(self._ids)}"

    def _upload(self, headers: dict[str, str], raw: bytes) -> RawReply:
        content = _multipart_file(headers.get("content-type", ""), raw)
        file_id = self._new_id("file-")
        self._files[file_id] = content
        return _json(200, _file_object(file_id, len(content), "batch"))

    def _create_openai(self, raw: bytes) -> RawReply:
        body = json.loads(raw)
        content = self._files.get(str(body.get("input_file_id")))
        if content is None:
            return _missing()
        items = []
        for line in content.decode("utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                items.append((str(entry["custom_id"]), dict(entry["body"])))
        batch = self._new("openai", self._new_id("batch_"), items, body.get("metadata") or {})
        batch.input_file_id = str(body["input_file_id"])
        return _json(200, self._openai_view(batch))

    def _create_anthropic(self, raw: bytes) -> RawReply:
        body = json.loads(raw)
        items = [(str(r["custom_id"]), dict(r["params"])) for r in body.get("requests", [])]
        batch = self._new("anthropic", self._new_id("msgbatch_"), items, {})
        return _json(200, self._anthropic_view(batch))

    def _new(
        self, provider: str, batch_id: str, items: list[tuple[str, dict[str, Any]]], meta: Any
    ) -> _Batch:
        batch = _Batch(
            provider=provider,
            id=batch_id,
            created=time.monotonic(),
            created_at=datetime.now(UTC),
            items=items,
            metadata={str(k): str(v) for k, v in dict(meta).items()},
        )
        self._batches[batch_id] = batch
        self.created.append((provider, batch_id, len(items)))
        return batch

    # reading

    def _one(self, provider: str, batch_id: str, *, cancel: bool) -> RawReply:
        batch = self._batches.get(batch_id)
        if batch is None or batch.provider != provider:
            return _missing()
        if cancel:
            batch.cancelled = True
        self._advance(batch)
        view = self._openai_view(batch) if provider == "openai" else self._anthropic_view(batch)
        return _json(200, view)

    def _list(self, provider: str) -> RawReply:
        batches = [b for b in reversed(self._batches.values()) if b.provider == provider]
        for batch in batches:
            self._advance(batch)
        view = self._openai_view if provider == "openai" else self._anthropic_view
        data = [view(b) for b in batches]
        page: dict[str, Any] = {"data": data, "has_more": False}
        page["first_id"] = data[0]["id"] if data else None
        page["last_id"] = data[-1]["id"] if data else None
        if provider == "openai":
            page["object"] = "list"
        return _json(200, page)

    def _anthropic_results(self, batch_id: str) -> RawReply:
        batch = self._batches.get(batch_id)
        if batch is None:
            return _missing()
        self._advance(batch)
        if batch.results is None:
            return _json(400, {"type": "error", "error": {"type": "invalid_request_error"}})
        lines = "".join(json.dumps(r) + "\n" for r in batch.results)
        return 200, lines.encode("utf-8"), "application/binary"

    # the batch's life

    def _advance(self, batch: _Batch) -> None:
        """End the batch once its time has come (and it is not held)."""
        if batch.end is not None:
            return
        script = self.script
        due = time.monotonic() - batch.created >= script.latency and not script.held
        if not (due or batch.cancelled):
            return
        end = "cancelled" if batch.cancelled else script.end
        batch.cancelled = end == "cancelled"
        batch.end = end
        batch.ended_at = datetime.now(UTC)
        if batch.provider == "openai":
            self._finish_openai(batch, end)
        else:
            self._finish_anthropic(batch, end)

    def _runs(self, index: int, end: str) -> bool:
        return end == "completed" or index < self.script.answered_before_end

    def _finish_openai(self, batch: _Batch, end: str) -> None:
        if end == "failed":
            return
        output: list[str] = []
        errors: list[str] = []
        for index, (custom_id, body) in enumerate(batch.items):
            line: dict[str, Any] = {"id": f"batch_req_{index}", "custom_id": custom_id}
            if self._runs(index, end):
                status = self.script.item_status(custom_id, index)
                if status is None:
                    line["response"] = {"status_code": 200, "body": self._completion(body)}
                    line["error"] = None
                    output.append(json.dumps(line))
                else:
                    error = {"message": f"fake error {status}", "type": "fake_error", "code": None}
                    line["response"] = {"status_code": status, "body": {"error": error}}
                    line["error"] = None
                    errors.append(json.dumps(line))
            elif end == "expired":
                line["response"] = None
                line["error"] = {"code": "batch_expired", "message": "the batch expired"}
                errors.append(json.dumps(line))
            # cancelled: requests that never ran are not in any file
        if output:
            batch.output_file_id = self._new_id("file-")
            self._files[batch.output_file_id] = ("\n".join(output) + "\n").encode()
        if errors:
            batch.error_file_id = self._new_id("file-")
            self._files[batch.error_file_id] = ("\n".join(errors) + "\n").encode()

    def _finish_anthropic(self, batch: _Batch, end: str) -> None:
        results = []
        for index, (custom_id, params) in enumerate(batch.items):
            result: dict[str, Any]
            if self._runs(index, end):
                status = self.script.item_status(custom_id, index)
                if status is None:
                    result = {"type": "succeeded", "message": self._message(params, index)}
                else:
                    kind = "invalid_request_error" if 400 <= status < 500 else "api_error"
                    error = {"type": kind, "message": f"fake error {status}"}
                    result = {"type": "errored", "error": {"type": "error", "error": error}}
            else:
                result = {"type": "canceled" if end == "cancelled" else "expired"}
            results.append({"custom_id": custom_id, "result": result})
        batch.results = results

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.answer(body)
        logprobs = None
        if body.get("logprobs"):
            logprobs = choice_logprobs(
                answer.content, answer.probability, int(body.get("top_logprobs") or 0)
            )
        return {
            "id": "chatcmpl-fake-batch",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": logprobs,
                }
            ],
            "usage": self.bill("/v1/chat/completions", body),
        }

    def _message(self, params: dict[str, Any], index: int) -> dict[str, Any]:
        return {
            "id": f"msg_fake_batch_{index}",
            "type": "message",
            "role": "assistant",
            "model": params.get("model", "fake-model"),
            "content": [{"type": "text", "text": self.answer(params).content}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": self.bill("/v1/messages", params),
        }

    # views

    def _openai_view(self, batch: _Batch) -> dict[str, Any]:
        created = int(batch.created_at.timestamp())
        status = batch.end or ("cancelling" if batch.cancelled else "in_progress")
        total = len(batch.items)
        answered = sum(1 for i in range(total) if batch.end and self._runs(i, batch.end))
        failed_count = 0
        if batch.end and batch.end != "failed":
            failed_count = sum(
                1
                for i, (cid, _) in enumerate(batch.items)
                if self._runs(i, batch.end) and self.script.item_status(cid, i) is not None
            )
        view: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "created_at": created,
            "input_file_id": batch.input_file_id or "",
            "status": status,
            "metadata": batch.metadata,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "request_counts": {
                "total": total,
                "completed": answered - failed_count,
                "failed": failed_count,
            },
        }
        if batch.end == "failed":
            view["errors"] = {
                "object": "list",
                "data": [{"code": "invalid_request", "message": "fake refusal", "line": 1}],
            }
        return view

    def _anthropic_view(self, batch: _Batch) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.results is None:
            counts["processing"] = len(batch.items)
        else:
            for entry in batch.results:
                kind = entry["result"]["type"]
                counts[kind] += 1
        ended = batch.results is not None
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": batch.created_at.isoformat(),
            "expires_at": (batch.created_at + timedelta(hours=24)).isoformat(),
            "ended_at": batch.ended_at.isoformat() if batch.ended_at else None,
            "cancel_initiated_at": (
                batch.ended_at.isoformat() if batch.cancelled and batch.ended_at else None
            ),
            "archived_at": None,
            "results_url": (
                f"{self.base_url}/v1/messages/batches/{batch.id}/results" if ended else None
            ),
        }


def _multipart_file(content_type: str, raw: bytes) -> bytes:
    """The content of the `file` part of a multipart/form-data body."""
    match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
    if match is None:
        return raw
    delimiter = b"--" + match.group(1).encode("latin-1")
    for part in raw.split(delimiter):
        head, _, content = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return content[:-2] if content.endswith(b"\r\n") else content
    return b""


def _file_object(file_id: str, size: int, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": f"{file_id}.jsonl",
        "purpose": purpose,
        "status": "processed",
    }


def _json(status: int, body: dict[str, Any]) -> RawReply:
    return status, json.dumps(body).encode("utf-8"), _JSON


def _missing() -> RawReply:
    return _json(404, {"error": {"message": "not found", "type": "not_found", "code": None}})
