"""OpenAI's Batch API through the official SDK: a JSONL file of chat-completion calls
(`files.create(purpose="batch")`), `batches.create` with a 24 h completion window and our
submission key in the batch metadata, `batches.retrieve` and `files.content` for the results."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Final

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from llm_provider_service.adapters.openai_chat import (
    chat_completion_body,
    split_logprobs,
    translate_openai_error,
    usage_tokens,
)
from llm_provider_service.adapters.status_errors import error_for_status
from llm_provider_service.application.ports import (
    BatchCall,
    BatchProgress,
    ChatReply,
    ItemOutcome,
)
from llm_provider_service.domain.batches import BatchEnd
from llm_provider_service.domain.errors import (
    BatchCancelledError,
    BatchExpiredError,
    ContentPolicyError,
    JudgeError,
    ProviderServerError,
)

SUBMISSION_KEY = "huleedu_submission_key"
ENDPOINT: Final = "/v1/chat/completions"
_ENDS = {
    "completed": BatchEnd.COMPLETED,
    "expired": BatchEnd.EXPIRED,
    "cancelled": BatchEnd.CANCELLED,
    "failed": BatchEnd.FAILED,
}
_CONTENT_POLICY_MARKERS = ("content_policy", "content_filter")


class OpenAIBatchAPI:
    """The BatchAPI of OpenAI (or a compatible server with the files and batches endpoints)."""

    finds_by_key = True

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    async def submit(self, calls: Sequence[BatchCall], *, key: str) -> str:
        """Upload the calls as JSONL and create the batch."""
        lines = [
            json.dumps(
                {
                    "custom_id": call.custom_id,
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": chat_completion_body(call.request),
                },
                ensure_ascii=False,
            )
            for call in calls
        ]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            upload = await self._client.files.create(
                file=(f"huleedu-{key}.jsonl", payload, "application/jsonl"), purpose="batch"
            )
            batch = await self._client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={SUBMISSION_KEY: key},
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        return batch.id

    async def find(
        self, key: str, *, item_count: int, created_after: datetime, known: Collection[str]
    ) -> str | None:
        """The batch whose metadata carries `key` (the list is newest first)."""
        since = created_after.timestamp()
        try:
            async for batch in self._client.batches.list(limit=100):
                if batch.created_at < since:
                    return None
                if (batch.metadata or {}).get(SUBMISSION_KEY) == key:
                    return batch.id
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        return None

    async def progress(self, batch_id: str) -> BatchProgress:
        """Running until completed, expired, cancelled or failed."""
        try:
            batch = await self._client.batches.retrieve(batch_id)
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        return BatchProgress(_ENDS.get(batch.status), batch.status)

    async def outcomes(self, batch_id: str) -> list[ItemOutcome]:
        """The lines of the output file (answers) and of the error file (per-item errors)."""
        try:
            batch = await self._client.batches.retrieve(batch_id)
            outcomes: list[ItemOutcome] = []
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await self._client.files.content(file_id)
                    outcomes.extend(_line_outcome(line) for line in content.text.splitlines())
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        return [outcome for outcome in outcomes if outcome.custom_id]


def _line_outcome(line: str) -> ItemOutcome:
    """One result line: `{custom_id, response: {status_code, body}, error}`."""
    if not line.strip():
        return ItemOutcome("")
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return ItemOutcome("")
    custom_id = str(entry.get("custom_id") or "")
    response = entry.get("response") or {}
    status = response.get("status_code")
    if status == 200:
        return _answer(custom_id, response.get("body") or {})
    if isinstance(status, int):
        body = response.get("body") or {}
        error = body.get("error") if isinstance(body, dict) else None
        code = str((error or {}).get("code") or "").lower()
        policy = any(marker in code for marker in _CONTENT_POLICY_MARKERS)
        return ItemOutcome(
            custom_id, error=error_for_status("OpenAI", status, {}, content_policy=policy)
        )
    code = str((entry.get("error") or {}).get("code") or "")
    return ItemOutcome(custom_id, error=_item_error(code))


def _item_error(code: str) -> JudgeError:
    if code == "batch_expired":
        return BatchExpiredError("the OpenAI batch expired before this request ran")
    if code == "batch_cancelled":
        return BatchCancelledError("the OpenAI batch was cancelled before this request ran")
    return ProviderServerError(f"the OpenAI batch could not run this request ({code or 'no code'})")


def _answer(custom_id: str, body: object) -> ItemOutcome:
    document, logprobs = split_logprobs(body) if isinstance(body, dict) else (body, None)
    try:
        completion = ChatCompletion.model_validate(document)
    except ValidationError:
        return ItemOutcome(
            custom_id, error=ProviderServerError("the OpenAI batch answer is malformed")
        )
    tokens = usage_tokens(completion.usage)
    if not completion.choices:
        return ItemOutcome(custom_id, ChatReply(None, completion.model, **tokens))
    choice = completion.choices[0]
    if choice.finish_reason == "content_filter" or choice.message.refusal:
        error = ContentPolicyError("the model refused to judge the content", details=dict(tokens))
        return ItemOutcome(custom_id, error=error)
    reply = ChatReply(
        choice.message.content,
        completion.model,
        **tokens,
        logprobs=logprobs,
    )
    return ItemOutcome(custom_id, reply)
