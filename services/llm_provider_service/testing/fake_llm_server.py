"""A scripted stand-in for the OpenAI and Anthropic HTTP APIs, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) for the official SDKs:
`POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic). Each request is
answered by a script: a good structured answer by default, or a scripted status, delay,
`Retry-After`, or malformed model text. An OpenAI call that asks for `logprobs` gets them in
OpenAI's shape, the verdict letter's carrying the script's `probability` (`fake_logprobs.py`).
Usage is counted from the prompt text, with prompt-cache hits and writes as the providers report
them (`FakePromptCache`). The batch APIs (OpenAI files +
batches, Anthropic message batches) are served by `fake_batch_endpoints.py`, scripted by a
`BatchScript`. Run it alone with
`python -m llm_provider_service.testing.fake_llm_server --port 8990 --delay 0.2`.
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

from llm_provider_service.testing.fake_batch_endpoints import (
    BatchScript,
    FakeAnswer,
    FakeBatchEndpoints,
)
from llm_provider_service.testing.fake_logprobs import choice_logprobs

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
    """How to answer one request. `content` None means a good answer to whatever was asked
    (for a comparison: essay A wins, or B when `probability` is below 0.5). `probability` is
    the judge's P(essay A is better), carried by the verdict token's log-probabilities when
    the request asks for them (OpenAI); None: the judge is certain of its verdict."""

    status: int = 200
    content: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    probability: float | None = None


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

    @property
    def is_grounded(self) -> bool:
        """Whether it asked for a rubric score grounded in reference passages."""
        return "grounded_rubric_scores" in json.dumps(self.body)


Script = Callable[[ReceivedRequest, int], FakeReply]
# The passage id a good grounded answer cites (requests in the tests name a passage so).
GROUNDED_CITATION = "kp-1"

# What every good answer reports as its completion tokens. The answer a real model writes for a
# comparison is a JSON object with a two-or-three-sentence justification (the system prompt asks
# for that): about 250-350 characters, 60-90 tokens. Output tokens cost 4-5 times as much as
# input, so an unrealistically short answer would flatter every ratio that caching and batch
# discounts change (they act on input tokens, or on both alike).
FAKE_COMPLETION_TOKENS = 75


def good_content(request: ReceivedRequest, probability: float | None = None) -> str:
    """A valid model answer for the kind of request (a comparison's verdict first, as the
    prompt asks: essay A wins unless `probability` is below 0.5)."""
    if request.is_comparison:
        winner, other = ("B", "A") if probability is not None and probability < 0.5 else ("A", "B")
        return json.dumps(
            {
                "winner": winner,
                "justification": (
                    f"Essay {winner} develops its argument with specific evidence and explains "
                    f"how each example supports its claim. Essay {other} states a clear position "
                    "but relies on assertion, and its paragraphs do not build on one another."
                ),
                "confidence": 4,
            }
        )
    answer: dict[str, Any] = {
        "scores": {"relevance": 4, "depth": 3, "clarity": 4, "technical": 3},
        "overall": 3.5,
        "feedback": "A relevant answer that could go deeper.",
    }
    if request.is_grounded:  # reference passages were given: cite one, and one that is not there
        answer["citations"] = [GROUNDED_CITATION, "not-a-passage"]
    return json.dumps(answer)


def openai_choice_logprobs(
    body: dict[str, Any], content: str, probability: float | None
) -> dict[str, Any] | None:
    """A choice's `logprobs` as OpenAI returns them: only when the call asked for them."""
    if not body.get("logprobs"):
        return None
    return choice_logprobs(content, probability, int(body.get("top_logprobs") or 0))


def _openai_body(
    request: ReceivedRequest,
    content: str,
    usage: dict[str, Any] | None = None,
    probability: float | None = None,
) -> dict[str, Any]:
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
                "logprobs": openai_choice_logprobs(request.body, content, probability),
            }
        ],
        "usage": usage or openai_usage(request.body, cached_tokens=0),
    }


def _anthropic_body(
    request: ReceivedRequest, content: str, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model", "fake-model"),
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage or anthropic_usage(request.body, cached_tokens=0, written_tokens=0),
    }


def _error_body(request: ReceivedRequest, reply: FakeReply) -> dict[str, Any]:
    message = reply.error_message or f"fake error {reply.status}"
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


class FakePromptCache:
    """The providers' prompt caches, as far as billing shows them (`server.prompt_cache`).

    Tokens are counted as characters / 4. A prefix becomes readable when the response of the
    request that wrote it is sent, so requests in flight together all miss, as with the real
    caches. OpenAI: caches the longest prefix shared with an earlier prompt under the same
    `prompt_cache_key`, from 1024 tokens in steps of 128; requests without a key are reported
    uncached (the real API also caches them, with less reliable routing, so a keyless figure is
    a full-price baseline). Anthropic: caches the system prompt and the user blocks up to the
    `cache_control` breakpoint when they reach the model's minimum (1024 tokens; 2048 for Haiku
    3/3.5; 4096 for Haiku 4.5), reporting a cache write the first time and reads afterwards.
    With several breakpoints each long-enough prefix is cached: a request reads the longest one
    already cached and writes the rest up to its last breakpoint. Batch items are billed here
    too, in the order the batch lists them (`FakeBatchEndpoints.bill`).
    """

    def __init__(self, *, remembered_prompts: int = 256) -> None:
        self._openai: dict[str, list[str]] = {}
        self._anthropic: set[str] = set()
        self._remembered = remembered_prompts

    def usage(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The usage object to report for a request, given what is cached now."""
        if path.endswith("/messages"):
            prefixes = _anthropic_cacheable_prefixes(body)
            if not prefixes:
                return anthropic_usage(body, cached_tokens=0, written_tokens=0)
            read = max((_tokens(p) for p in prefixes if p in self._anthropic), default=0)
            written = _tokens(prefixes[-1]) - read
            return anthropic_usage(body, cached_tokens=read, written_tokens=written)
        key = body.get("prompt_cache_key")
        if not isinstance(key, str):
            return openai_usage(body, cached_tokens=0)
        text = _openai_prompt_text(body)
        shared = max((_common_prefix(text, seen) for seen in self._openai.get(key, ())), default=0)
        tokens = _tokens_of_length(shared)
        cached = 0 if tokens < 1024 else 1024 + (tokens - 1024) // 128 * 128
        return openai_usage(body, cached_tokens=cached)

    def remember(self, path: str, body: dict[str, Any]) -> None:
        """Make the request's cacheable prefix readable (its response has been sent)."""
        if path.endswith("/messages"):
            self._anthropic.update(_anthropic_cacheable_prefixes(body))
            return
        key = body.get("prompt_cache_key")
        if isinstance(key, str):
            seen = self._openai.setdefault(key, [])
            seen.append(_openai_prompt_text(body))
            del seen[: -self._remembered]


def _tokens_of_length(chars: int) -> int:
    return chars // 4


def _tokens(text: str) -> int:
    return _tokens_of_length(len(text))


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (a binary search of C-speed slice comparisons)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _openai_prompt_text(body: dict[str, Any]) -> str:
    return "".join(_text_of(m.get("content")) for m in body.get("messages", []))


def _anthropic_prompt_text(body: dict[str, Any]) -> str:
    return _text_of(body.get("system")) + _openai_prompt_text(body)


def _anthropic_min_cacheable(model: str) -> int:
    if "haiku-4-5" in model:
        return 4096
    if "haiku" in model:
        return 2048
    return 1024


def _anthropic_cacheable_prefixes(body: dict[str, Any]) -> list[str]:
    """The texts up to each `cache_control` breakpoint that are long enough to be cached,
    shortest first."""
    parts: list[tuple[str, bool]] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append((system, False))
    for block in system if isinstance(system, list) else []:
        parts.append((str(block.get("text", "")), "cache_control" in block))
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append((content, False))
            continue
        for block in content or []:
            parts.append((str(block.get("text", "")), "cache_control" in block))
    minimum = _anthropic_min_cacheable(str(body.get("model", "")))
    prefixes = []
    for index, (_text, marked) in enumerate(parts):
        if marked:
            prefix = "".join(text for text, _mark in parts[: index + 1])
            if _tokens(prefix) >= minimum:
                prefixes.append(prefix)
    return prefixes


def openai_usage(body: dict[str, Any], *, cached_tokens: int) -> dict[str, Any]:
    """An OpenAI usage object: every prompt token in `prompt_tokens`, the cached ones also in
    `prompt_tokens_details.cached_tokens`."""
    prompt = _tokens(_openai_prompt_text(body))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": FAKE_COMPLETION_TOKENS,
        "total_tokens": prompt + FAKE_COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": min(cached_tokens, prompt)},
    }


def anthropic_usage(
    body: dict[str, Any], *, cached_tokens: int, written_tokens: int
) -> dict[str, Any]:
    """An Anthropic usage object: `input_tokens` are the tokens after the last breakpoint, the
    cached prefix is in `cache_read_input_tokens` or `cache_creation_input_tokens`."""
    total = _tokens(_anthropic_prompt_text(body))
    return {
        "input_tokens": max(0, total - cached_tokens - written_tokens),
        "output_tokens": FAKE_COMPLETION_TOKENS,
        "cache_read_input_tokens": cached_tokens,
        "cache_creation_input_tokens": written_tokens,
    }


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
            answer=self._batch_answer,
            bill=self._bill_batch_item,
            script=batch_script or BatchScript(),
        )
        self.delay = delay
        self.received: list[ReceivedRequest] = []
        self.answered = 0
        self.prompt_cache = FakePromptCache()
        # The usage object of every good answer sent, batch items included, in order (what a
        # test expects to be billed).
        self.reported_usage: list[dict[str, Any]] = []
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _batch_answer(self, body: dict[str, Any]) -> FakeAnswer:
        """A batch item's answer: the script's content and probability when it scripts one for
        the request (a judge), else a good answer (batch-level failures are the
        `BatchScript`'s)."""
        request = ReceivedRequest("", {}, body, time.monotonic())
        reply = self.script(request, len(self.received))
        if reply.status != 200:
            return FakeAnswer(good_content(request))
        content = (
            reply.content if reply.content is not None else good_content(request, reply.probability)
        )
        return FakeAnswer(content, reply.probability)

    def _bill_batch_item(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The usage of one batch item, billed like a synchronous call that ran just then."""
        usage = self.prompt_cache.usage(path, body)
        self.prompt_cache.remember(path, body)
        self.reported_usage.append(usage)
        return usage

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
                usage = self.prompt_cache.usage(request.path, request.body)
                await asyncio.sleep(self.delay + reply.delay)
                writer.write(self._response(request, reply, usage))
                if reply.status == 200:
                    self.prompt_cache.remember(request.path, request.body)
                    self.reported_usage.append(usage)
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
    def _response(
        request: ReceivedRequest, reply: FakeReply, usage: dict[str, Any] | None = None
    ) -> bytes:
        if reply.status == 200:
            content = reply.content
            if content is None:
                content = good_content(request, reply.probability)
            if request.path.endswith("/messages"):
                body = _anthropic_body(request, content, usage)
            else:
                body = _openai_body(request, content, usage, reply.probability)
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
