"""Retrieval-grounded rubric requests: every provider takes the reference passages and answers
with the ids of the passages it used as `citations`."""

from __future__ import annotations

import json
import uuid

import pytest

from common_core.events.llm import (
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    ReferencePassage,
)
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.judging import ChatJudge, HeuristicJudge
from llm_provider_service.application.ports import ChatReply, ChatRequest, Judge
from llm_provider_service.config import Settings
from llm_provider_service.domain.prompts import GROUNDED_RUBRIC_PROMPT_VERSION, fence
from llm_provider_service.testing.judge_tricks import (
    ESSAYS,
    HONEST_WEAK_ID,
    PROMPT,
    REFERENCE_PASSAGES,
    RUBRIC,
)

PASSAGES = [ReferencePassage(passage_id=pid, text=text) for pid, text in REFERENCE_PASSAGES]


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def _request(
    provider: LLMProviderName, passages: list[ReferencePassage] | None = None
) -> LLMRubricRequestV1:
    return LLMRubricRequestV1(
        request_id=uuid.uuid4(),
        answer_text=ESSAYS[HONEST_WEAK_ID],
        question_text=PROMPT,
        rubric={"criteria": RUBRIC},
        llm_config=LLMConfig(provider=provider),
        callback_topic="x.results",
        reference_passages=PASSAGES if passages is None else passages,
    )


class ScriptedChat:
    """A chat model that records what it was asked and cites one real and one invented id."""

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatReply:
        self.requests.append(request)
        answer = {
            "scores": {"relevance": 4, "depth": 3, "clarity": 4, "technical": 3},
            "overall": 3.5,
            "feedback": "Covers the distraction point; misses the useful-tools point.",
            "citations": ["kp-distraction", "made-up-id"],
        }
        return ChatReply(text=json.dumps(answer), model=request.model)


def _answerer(provider: LLMProviderName, judge: Judge) -> RequestAnswerer:
    return RequestAnswerer(Settings(), {provider: judge})


class TestChatProviders:
    @pytest.mark.parametrize("provider", [LLMProviderName.OPENAI, LLMProviderName.ANTHROPIC])
    async def test_the_model_sees_the_fenced_passages_and_its_real_citations_are_kept(
        self, provider: LLMProviderName
    ) -> None:
        chat = ScriptedChat()
        answerer = _answerer(provider, ChatJudge(provider.value, chat))
        result = await answerer.answer_rubric(_request(provider), uuid.uuid4())
        assert result.error_detail is None
        assert result.citations == ["kp-distraction"]  # the invented id is dropped
        assert result.prompt_version == GROUNDED_RUBRIC_PROMPT_VERSION
        (sent,) = chat.requests
        assert sent.schema_name == "grounded_rubric_scores"
        assert "citations" in sent.schema["required"]
        for number, passage in enumerate(PASSAGES, start=1):
            begin, end = fence(f"PASSAGE_{number}", passage.text)
            assert f"{begin}\n{passage.text}\n{end}" in sent.user
            assert json.dumps(passage.passage_id) in sent.user
        # The passages come after the rubric and before the answer.
        assert sent.user.index("Rubric") < sent.user.index(PASSAGES[0].text)
        assert sent.user.index(PASSAGES[-1].text) < sent.user.index(ESSAYS[HONEST_WEAK_ID])

    async def test_without_passages_the_plain_rubric_schema_and_prompt_are_used(self) -> None:
        chat = ScriptedChat()
        answerer = _answerer(LLMProviderName.OPENAI, ChatJudge("openai", chat))
        result = await answerer.answer_rubric(_request(LLMProviderName.OPENAI, []), uuid.uuid4())
        assert result.citations == []
        assert result.prompt_version == "rubric_v1"
        assert chat.requests[0].schema_name == "rubric_scores"
        assert "Reference passages" not in chat.requests[0].user


class TestHeuristicProvider:
    async def test_it_cites_the_key_points_the_answer_covers(self) -> None:
        answerer = _answerer(LLMProviderName.HEURISTIC, HeuristicJudge())
        result = await answerer.answer_rubric(_request(LLMProviderName.HEURISTIC), uuid.uuid4())
        assert result.provider == "heuristic"
        assert result.citations
        assert set(result.citations) <= {p.passage_id for p in PASSAGES}
        assert result.feedback is not None
        assert "key-point coverage" in result.feedback
        assert "no language model" in result.feedback

    async def test_an_answer_covering_no_key_point_cites_nothing(self) -> None:
        answerer = _answerer(LLMProviderName.HEURISTIC, HeuristicJudge())
        request = _request(
            LLMProviderName.HEURISTIC,
            [ReferencePassage(passage_id="volcanoes", text="Magma, lava and tectonic plates.")],
        )
        result = await answerer.answer_rubric(request, uuid.uuid4())
        assert result.citations == []
