"""Reading the leading answer tokens' log-probabilities out of a chat completion's JSON."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import ChoiceLogprobs

from llm_provider_service.adapters.openai_chat import LEADING_TOKENS_READ, split_logprobs
from llm_provider_service.testing.fake_logprobs import choice_logprobs

ANSWER = json.dumps({"winner": "B", "justification": "B argues better. " * 20, "confidence": 3})


def _completion(logprobs: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
    }


class TestSplitLogprobs:
    def test_the_leading_tokens_are_read_and_the_completion_loses_its_logprobs(self) -> None:
        document = _completion(choice_logprobs(ANSWER, 0.25, 5))
        completion, tokens = split_logprobs(document)

        assert tokens is not None
        assert (
            len(tokens) == LEADING_TOKENS_READ < len(document["choices"][0]["logprobs"]["content"])
        )
        assert "".join(t.token for t in tokens) == ANSWER[: len("".join(t.token for t in tokens))]
        assert {a.token for a in tokens[5].top} >= {"A", "B"}
        parsed = ChatCompletion.model_validate(completion)
        assert parsed.choices[0].message.content == ANSWER
        assert parsed.choices[0].logprobs is None
        assert document["choices"][0]["logprobs"] is not None  # the input is left alone

    def test_no_or_malformed_logprobs_give_none_and_keep_the_completion(self) -> None:
        for logprobs in (None, {"content": None}, {"content": [{"token": "{"}]}, "junk"):
            completion, tokens = split_logprobs(_completion(logprobs))
            assert tokens is None
            assert ChatCompletion.model_validate(completion).choices[0].message.content == ANSWER

    def test_a_completion_without_choices_is_returned_as_it_is(self) -> None:
        document = {"id": "c", "choices": []}
        assert split_logprobs(document) == (document, None)


class TestFakeServersShape:
    def test_the_fakes_logprobs_validate_as_the_sdks_choice_logprobs(self) -> None:
        logprobs = ChoiceLogprobs.model_validate(choice_logprobs(ANSWER, 0.25, 5))
        assert logprobs.content is not None
        assert "".join(token.token for token in logprobs.content) == ANSWER
        assert all(len(token.top_logprobs) == 5 for token in logprobs.content)
