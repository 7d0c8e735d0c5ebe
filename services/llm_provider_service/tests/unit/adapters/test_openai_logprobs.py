"""Reading the leading answer tokens' log-probabilities out of a chat completion's JSON."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import ChoiceLogprobs

from llm_provider_service.adapters.openai_chat import split_logprobs
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
    def test_the_tokens_up_to_the_verdict_are_read_and_the_completion_loses_its_logprobs(
        self,
    ) -> None:
        document = _completion(choice_logprobs(ANSWER, 0.25, 5))
        completion, tokens = split_logprobs(document)

        assert tokens is not None
        # `{"`, `winner`, `":`, ` `, `"`, `B`: up to the verdict letter and no further.
        assert [t.token for t in tokens] == ['{"', "winner", '":', " ", '"', "B"]
        assert {a.token for a in tokens[-1].top} >= {"A", "B"}
        parsed = ChatCompletion.model_validate(completion)
        assert parsed.choices[0].message.content == ANSWER
        assert parsed.choices[0].logprobs is None
        assert document["choices"][0]["logprobs"] is not None  # the input is left alone

    def test_an_answer_without_the_verdict_first_reads_no_tokens(self) -> None:
        text = json.dumps({"justification": "x", "winner": "A", "confidence": 3})
        document = _completion(choice_logprobs(text, 0.5, 5))
        document["choices"][0]["message"]["content"] = text
        assert split_logprobs(document)[1] is None

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
