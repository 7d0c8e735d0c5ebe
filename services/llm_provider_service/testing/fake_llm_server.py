"""A scripted stand-in for the OpenAI and Anthropic HTTP APIs, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) for the official SDKs:
`POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic). Each request is
answered by a script: a good structured answer by default, or a scripted status, delay,
`Retry-After`, or malformed model text. The batch APIs (OpenAI files + batches, Anthropic
message batches) are served by `fake_batch_endpoints.py`, scripted by a `BatchScript`.
Run it alone with `python -m llm_provider_service.testing.fake_llm_server --port 8990 --delay 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_provider_service.testing.fake_batch_endpoints import BatchScript, FakeBatchEndpoints

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class FakeReply:
    """How to answer one request. `content` None means a good answer to whatever was asked."""

    status: int = 200
    content: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the server saw."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    method: str = "POST"
    raw: bytes = b""

    @property
    def is_comparison(self) -> bool:
        """Whether it asked for a comparison verdict (else a rubric score)."""
        return "comparison_verdict" in json.dumps(self.body)


Script = Callable[[ReceivedRequest, int], FakeReply]


def good_content(request: ReceivedRequest) -> str:
    """A valid model answer for the kind of request."""
    if request.is_comparison:
        return json.dumps(
            {
                "winner": "essay_a",
                "justification": "Essay A develops its argument.",
                "confidence": 4,
            }
        )
    return json.dumps(
        {
            "scores": {"relevance": 4, "depth": 3, "clarity": 4, "technical": 3},
            "overall": 3.5,
            "feedback": "A relevant answer that could go deeper.",
        }
    )


def _openai_body(request: ReceivedRequest, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }


def _anthropic_body(request: ReceivedRequest, content: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model", "fake-model"),
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 120, "output_tokens": 30},
    }


def _error_body(request: ReceivedRequest, reply: FakeReply) -> dict[str, Any]:
    message = f"fake error {reply.status}"
    if request.path.endswith("/messages"):
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": "fake_error", "code": reply.error_code}}


def always_good(_request: ReceivedRequest, _index: int) -> FakeReply:
    """The default script: every request gets a good answer."""
    return FakeReply()


def scripted(*replies: FakeReply, then: FakeReply | None = None) -> Script:
    """Answer the first requests with `replies` in order, then with `then` (default: good)."""
    tail = then or FakeReply()

    def script(_request: ReceivedRequest, index: int) -> FakeReply:
        return replies[index] if index < len(replies) else tail

    return script


class FakeLLMServer:
    """An asyncio HTTP server on 127.0.0.1 answering like the OpenAI/Anthropic APIs."""

    def __init__(
        self,
        script: Script = always_good,
        *,
        delay: float = 0.0,
        port: int = 0,
        batch_script: BatchScript | None = None,
    ) -> None:
        self.script = script
        self.batches = FakeBatchEndpoints(
            answer=lambda body: good_content(ReceivedRequest("", {}, body, 0.0)),
            script=batch_script or BatchScript(),
        )
        self.delay = delay
        self.received: list[ReceivedRequest] = []
        self.answered = 0
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def openai_base_url(self) -> str:
        """OPENAI_BASE_URL for this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """ANTHROPIC_BASE_URL for this server."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)
        self.batches.base_url = self.anthropic_base_url

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeLLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                batch_reply = self.batches.handle(
                    request.method, request.path, request.headers, request.raw
                )
                if batch_reply is not None:
                    writer.write(_raw_response(*batch_reply))
                    await writer.drain()
                    continue
                index = len(self.received)
                self.received.append(request)
                reply = self.script(request, index)
                await asyncio.sleep(self.delay + reply.delay)
                writer.write(self._response(request, reply))
                await writer.drain()
                self.answered += 1
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
        request_line = await reader.readline()
        if not request_line:
            return None
        method, path, _version = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:  # a multipart upload (the batch API's files)
            body = {}
        return ReceivedRequest(path, headers, body, time.monotonic(), method, raw)

    @staticmethod
    def _response(request: ReceivedRequest, reply: FakeReply) -> bytes:
        if reply.status == 200:
            content = reply.content if reply.content is not None else good_content(request)
            if request.path.endswith("/messages"):
                body = _anthropic_body(request, content)
            else:
                body = _openai_body(request, content)
        else:
            body = _error_body(request, reply)
        payload = json.dumps(body).encode()
        head = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
            "content-type: application/json",
            f"content-length: {len(payload)}",
            "connection: keep-alive",
            *(f"{k}: {v}" for k, v in reply.headers.items()),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _raw_response(status: int, payload: bytes, content_type: str) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"content-type: {content_type}",
        f"content-length: {len(payload)}",
        "connection: keep-alive",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


async def _serve_forever(port: int, delay: float, batch_latency: float) -> None:
    server = FakeLLMServer(delay=delay, port=port, batch_script=BatchScript(latency=batch_latency))
    await server.start()
    print(f"fake LLM server listening on {server.openai_base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    """Run the fake server until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8990)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--batch-latency", type=float, default=5.0, help="seconds until a provider batch ends"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.port, args.delay, args.batch_latency))


if __name__ == "__main__":
    main()
