"""`huleedu erase batch` and `huleedu erase learner` against a local HTTP stub server (a real
socket, answers set per test): what the client sends, what it prints, how it exits. The services'
own erasure behaviour is tested on the real services."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from huleedu_cli.app import app

runner = CliRunner()
TOKEN = "operator-token"


@dataclass
class StubServer:
    """Answers each POST with the reply set for its path; records what it received."""

    url: str
    replies: dict[str, tuple[int, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    state = StubServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            state.received.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(raw) if raw else None,
                }
            )
            status, reply = state.replies.get(self.path, (404, {"code": "not_found"}))
            body = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the stub quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_token_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HULEEDU_API_TOKEN", raising=False)
    monkeypatch.delenv("HULEEDU_API_TOKEN_FILE", raising=False)


BATCH_PATH = "/api/v1/erasures/batches/42"
ERASED_BATCH = {
    "batch_id": 42,
    "erased": {"essay_texts": 6, "comparison_prompts": 15},
    "already_erased": False,
    "audit_id": "3f1c0c39-3a5b-4bb1-9f0e-0d6a4a7d2e11",
}


def erase_batch(stub: StubServer, *extra: str) -> Any:
    return runner.invoke(
        app, ["erase", "batch", "42", "--cj-url", stub.url, "--api-token", TOKEN, *extra]
    )


class TestEraseBatch:
    def test_posts_with_the_token_and_prints_what_was_removed(self, stub: StubServer) -> None:
        stub.replies[BATCH_PATH] = (200, ERASED_BATCH)

        result = erase_batch(stub)

        assert result.exit_code == 0, result.output
        assert stub.received == [
            {"path": BATCH_PATH, "authorization": f"Bearer {TOKEN}", "body": None}
        ]
        assert "batch 42: erased" in result.stdout
        assert "essay_texts         6" in result.stdout
        assert "comparison_prompts  15" in result.stdout
        assert ERASED_BATCH["audit_id"] in result.stdout

    def test_a_repeat_says_already_erased(self, stub: StubServer) -> None:
        again = {**ERASED_BATCH, "erased": {"essay_texts": 0}, "already_erased": True}
        stub.replies[BATCH_PATH] = (200, again)

        result = erase_batch(stub)

        assert result.exit_code == 0
        assert "batch 42: already erased, nothing left to remove" in result.stdout

    def test_json_prints_the_services_answer(self, stub: StubServer) -> None:
        stub.replies[BATCH_PATH] = (200, ERASED_BATCH)

        result = erase_batch(stub, "--json")

        assert json.loads(result.stdout) == {**ERASED_BATCH, "batch_id": "42"}

    def test_unknown_batch_exits_1_saying_nothing_was_erased(self, stub: StubServer) -> None:
        stub.replies[BATCH_PATH] = (404, {"code": "not_found", "message": "no batch 42"})

        result = erase_batch(stub)

        assert result.exit_code == 1
        assert f"error: no batch 42 at {stub.url} (404): nothing was erased" in result.stderr

    def test_a_token_without_the_scope_exits_1_naming_scope_and_variables(
        self, stub: StubServer
    ) -> None:
        refusal = {"code": "insufficient_scope", "message": "the token lacks the scope cj:erase"}
        stub.replies[BATCH_PATH] = (403, refusal)

        result = erase_batch(stub)

        assert result.exit_code == 1
        assert "refused the credentials (403: insufficient_scope" in result.stderr
        assert "HULEEDU_API_TOKEN" in result.stderr
        assert "scope cj:erase" in result.stderr
        assert "Traceback" not in result.output

    def test_a_server_error_exits_1(self, stub: StubServer) -> None:
        stub.replies[BATCH_PATH] = (500, {"code": "internal_error", "message": "internal error"})

        result = erase_batch(stub)

        assert result.exit_code == 1
        assert f"CJ service answered 500 for {BATCH_PATH}: internal_error" in result.stderr

    def test_an_unreachable_service_exits_1(self, stub: StubServer) -> None:
        result = runner.invoke(
            app, ["erase", "batch", "42", "--cj-url", "http://127.0.0.1:9", "--api-token", TOKEN]
        )

        assert result.exit_code == 1
        assert "CJ service at http://127.0.0.1:9 unreachable" in result.stderr


LEARNER_PATH = "/api/erasures/learners"


class TestEraseLearner:
    def test_posts_the_user_id_and_prints_what_was_removed(self, stub: StubServer) -> None:
        stub.replies[LEARNER_PATH] = (
            200,
            {
                "subject": "user_id",
                "erased": {"answer_texts": 3, "outbox_rows": 2},
                "already_erased": False,
                "audit_id": "a5d0c9a2-3a0c-4f8e-9d55-7c4e3bbf0a10",
            },
        )

        result = runner.invoke(
            app,
            ["erase", "learner", "--user-id", "u-7", "--submission-url", stub.url,
             "--api-token", TOKEN],
        )  # fmt: skip

        assert result.exit_code == 0, result.output
        assert stub.received[0]["body"] == {"user_id": "u-7"}
        assert "learner (user id): erased" in result.stdout
        assert "answer_texts  3" in result.stdout

    def test_a_refused_body_exits_1_with_the_field(self, stub: StubServer) -> None:
        stub.replies[LEARNER_PATH] = (
            400,
            {
                "code": "invalid_anonymous_token",
                "message": "anonymous_token: must be a UUID",
                "field": "anonymous_token",
            },
        )

        result = runner.invoke(
            app,
            ["erase", "learner", "--anonymous-token", "x", "--submission-url", stub.url],
        )

        assert result.exit_code == 1
        assert stub.received[0]["body"] == {"anonymous_token": "x"}
        assert "answered 400" in result.stderr
        assert "(field anonymous_token)" in result.stderr

    @pytest.mark.parametrize(
        "options", [[], ["--user-id", "u", "--anonymous-token", "t"]], ids=["none", "both"]
    )
    def test_exactly_one_subject_is_required(self, stub: StubServer, options: list[str]) -> None:
        result = runner.invoke(app, ["erase", "learner", *options, "--submission-url", stub.url])

        assert result.exit_code == 2
        assert "give exactly one of --user-id or --anonymous-token" in result.stderr
        assert stub.received == []
