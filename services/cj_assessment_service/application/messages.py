"""The outgoing messages of a batch: events staged in the outbox of the caller's transaction, and
the comparison requests of newly planned pairs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from uuid import UUID, uuid4

from pydantic import BaseModel

from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    NewPair,
    PairRecord,
    UnitOfWork,
)
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.domain.pair_planning import OrderedPair
from common_core.events.envelope import new_event
from common_core.events.llm import ComparisonEssay, LLMComparisonRequestV1
from common_core.topics import Topic

YIELD_EVERY_MESSAGES = 200


class BatchMessages:
    """Builds and stages the events about a batch."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def stage(
        self,
        uow: UnitOfWork,
        topic: Topic,
        payload: BaseModel,
        *,
        batch: BatchRecord,
        key: str,
    ) -> None:
        """Stage an event about `batch` (its correlation id) in this transaction's outbox."""
        name = self._settings.topic(topic)
        envelope = new_event(
            name, payload, source_service=SERVICE_NAME, correlation_id=batch.correlation_id
        )
        uow.stage_event(name, envelope, key=key)

    async def request_pairs(
        self,
        uow: UnitOfWork,
        batch: BatchRecord,
        essays: Sequence[EssayRecord],
        pairs: Sequence[OrderedPair],
        *,
        step: int,
    ) -> None:
        """Store newly planned pairs (planning step `step`) and stage their requests; `essays`
        holds at least the essays of those pairs."""
        new_pairs = [NewPair(uuid4(), a, b, uuid4()) for a, b in pairs]
        await uow.pairs.add(batch.id, step, new_pairs)
        by_position = {e.position: e for e in essays}
        for index, pair in enumerate(new_pairs, 1):
            self.stage_comparison(uow, batch, by_position, pair)
            if index % YIELD_EVERY_MESSAGES == 0:
                # Building and encoding a request takes tens of microseconds; the opening of a
                # 10,000-essay batch stages 10,000 of them. Let the loop run in between.
                await asyncio.sleep(0)

    async def ask_again(
        self, uow: UnitOfWork, batch: BatchRecord, pairs: Sequence[tuple[PairRecord, UUID]]
    ) -> None:
        """Stage the requests of pairs asked again under new request ids (the same orientation
        and prompt), reading only their essays."""
        wanted = {i for pair, _ in pairs for i in (pair.essay_a, pair.essay_b)}
        essays = {e.position: e for e in await uow.essays.get(batch.id, wanted)}
        for pair, request_id in pairs:
            new_pair = NewPair(pair.id, pair.essay_a, pair.essay_b, request_id)
            self.stage_comparison(uow, batch, essays, new_pair)

    def stage_comparison(
        self,
        uow: UnitOfWork,
        batch: BatchRecord,
        essays: Mapping[int, EssayRecord],
        pair: NewPair,
    ) -> None:
        """Stage the comparison request of one pair; `essays` by position."""
        settings = batch.request_settings
        first, second = essays[pair.essay_a], essays[pair.essay_b]
        payload = LLMComparisonRequestV1(
            request_id=pair.request_id,
            essay_a=ComparisonEssay(essay_id=first.essay_id, text_content=first.text_content),
            essay_b=ComparisonEssay(essay_id=second.essay_id, text_content=second.text_content),
            essay_instructions=settings.essay_instructions,
            judge_rubric=settings.judge_rubric,
            language=settings.language,
            llm_config=settings.llm_config,
            callback_topic=self._settings.callback_topic,
            request_metadata={"batch_id": str(batch.id), "pair_id": str(pair.id)},
            callback_key=str(batch.id),
        )
        # Keyed by request: a batch's requests spread over every partition, so every LLM
        # provider instance answers its share. Their answers are keyed by the batch
        # (`callback_key`), so one CJ instance records all of a batch's callbacks in order.
        self.stage(
            uow, Topic.LLM_COMPARISON_REQUESTED, payload, batch=batch, key=str(pair.request_id)
        )
