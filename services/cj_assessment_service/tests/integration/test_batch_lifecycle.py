"""A batch from request to completed event on the real broker and database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from cj_assessment_service.adapters.tables import cj_batches
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    batch_in_state,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
)
from common_core.errors import ErrorCode
from common_core.events.cj import (
    AnchorEssay,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJCompletionReason,
    EssayToProcess,
    JudgeIdentity,
)
from common_core.runtime.kafka_producer import OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import Topic, dlq_topic_name

pytestmark = pytest.mark.integration


class TestFullLifecycle:
    async def test_ten_essays_are_compared_in_all_45_pairs_and_completed_once(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with (
            running_service(settings) as service,
            judging(settings, service.producer) as judge,
        ):
            request = request_envelope(settings, "bos-batch-42", essays(10))
            await submit(service, request)
            batch = await batch_in_state(service, "bos-batch-42", BatchState.COMPLETED, timeout=90)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert batch is not None
        assert batch.planned == 45
        assert batch.completed == 45
        assert len(judge.requests) == 45
        asked = {
            frozenset((r.data.essay_a.essay_id, r.data.essay_b.essay_id)) for r in judge.requests
        }
        assert len(asked) == 45
        assert {r.correlation_id for r in judge.requests} == {request.correlation_id}
        assert {r.data.request_metadata["batch_id"] for r in judge.requests} == {str(batch.id)}
        assert len(events) == 1
        completed = events[0]
        assert completed.correlation_id == request.correlation_id
        assert completed.data.entity_ref == "bos-batch-42"
        assert completed.data.cj_assessment_job_id == str(batch.id)
        assert completed.data.completion_reason == CJCompletionReason.ALL_PAIRS_COMPARED
        rankings = completed.data.rankings
        assert sorted(r.rank for r in rankings) == list(range(1, 11))
        assert [r.essay_id for r in rankings] == [f"e{i}" for i in range(9, -1, -1)]
        assert all(r.comparisons == 9 for r in rankings)
        assert completed.data.system_metadata.resource_usage.completed_comparisons == 45
        # The scripted judge reports 10 + 2 tokens per answer and no price: summed, cost unknown.
        usage = completed.data.system_metadata.resource_usage
        assert (usage.prompt_tokens, usage.completion_tokens) == (450, 90)
        assert usage.estimated_cost_usd is None
        assert usage.unpriced_comparisons == 45
        assert completed.data.system_metadata.judges == [
            JudgeIdentity(provider="heuristic", model="test", comparisons=45)
        ]


class TestRequestHandling:
    async def test_invalid_requests_fail_with_a_validation_error_and_the_consumer_keeps_going(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        request_topic = settings.topic(Topic.CJ_ASSESSMENT_REQUESTED)
        async with running_service(settings) as service, judging(settings, service.producer):
            await submit(service, request_envelope(settings, "empty", []))
            await submit(
                service,
                request_envelope(
                    settings,
                    "dup-ids",
                    [EssayToProcess(essay_id="x", text_content="a")] * 2,
                ),
            )
            await submit(
                service,
                request_envelope(
                    settings,
                    "blank",
                    [*essays(2), EssayToProcess(essay_id="e9", text_content="   ")],
                ),
            )
            await service.producer.send(
                OutgoingMessage(topic=request_topic, value=b"{not json", key="garbage")
            )
            await submit(service, request_envelope(settings, "after-garbage", essays(3)))
            await batch_in_state(service, "after-garbage", BatchState.COMPLETED)
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=3
            )
            dead = await read_topic(
                kafka_bootstrap_servers, dlq_topic_name(request_topic), expected=1, timeout=30
            )
        by_ref = {e.data.entity_ref: e.data.error_detail for e in failed}
        assert set(by_ref) == {"empty", "dup-ids", "blank"}
        assert {d.code for d in by_ref.values()} == {ErrorCode.VALIDATION}
        assert "empty" in by_ref["empty"].message
        assert "duplicate" in by_ref["dup-ids"].message
        assert "e9" in by_ref["blank"].message
        assert [r.value for r in dead] == [b"{not json"]

    async def test_a_redelivered_or_repeated_request_does_not_create_a_second_batch(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy=lambda _r, _i: None) as judge,
        ):
            first = request_envelope(settings, "twice", essays(4))
            await submit(service, first)
            await submit(service, first)  # redelivery: same event id
            await submit(service, request_envelope(settings, "twice", essays(4)))  # live ref
            await submit(service, request_envelope(settings, "marker", essays(2)))
            await eventually(lambda: asyncio.sleep(0, len(judge.requests)), until=lambda n: n == 7)
            async with service.sessions() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(cj_batches)
                    .where(cj_batches.c.entity_ref == "twice")
                )
        assert count == 1

    async def test_a_single_essay_completes_at_once_with_rank_one(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            await submit(service, request_envelope(settings, "solo", essays(1)))
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.INSUFFICIENT_ESSAYS
        assert [(r.essay_id, r.rank) for r in events[0].data.rankings] == [("e0", 1)]


class TestTopUpsAndAnchors:
    async def test_a_budget_below_all_pairs_plans_top_ups_without_repeating_orientations(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            target_outstanding_comparisons=20,
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer) as judge,
        ):
            await submit(
                service, request_envelope(settings, "waves", essays(16), max_comparisons=70)
            )
            batch = await batch_in_state(service, "waves", BatchState.COMPLETED, timeout=90)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert batch is not None
        assert batch.waves >= 2
        assert batch.planned <= 70
        ordered = [(r.data.essay_a.essay_id, r.data.essay_b.essay_id) for r in judge.requests]
        assert len(ordered) == len(set(ordered))
        ranking = [r.essay_id for r in events[0].data.rankings]
        assert ranking[0] in {"e15", "e14"}
        assert ranking[-1] in {"e0", "e1"}

    async def test_anchors_give_grade_projections_that_are_not_one_hot(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        anchors = [
            AnchorEssay(essay_id="a1", text_content="weak", grade="C"),
            AnchorEssay(essay_id="a4", text_content="fair", grade="B"),
            # s7 beats the A anchor outright; with an A anchor above it (say a9) s7 would sit
            # between B and A and its projection would hang on tie-broken orientations.
            AnchorEssay(essay_id="a6", text_content="strong", grade="A"),
        ]
        async with running_service(settings) as service, judging(settings, service.producer):
            await submit(
                service,
                request_envelope(settings, "anchored", essays(8, prefix="s"), anchors=anchors),
            )
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        completed = events[0].data
        assert [r.essay_id for r in completed.rankings][:1] == ["s7"]
        assert len(completed.rankings) == 8
        projections = {p.essay_id: p for p in completed.grade_projections or []}
        assert set(projections) == {f"s{i}" for i in range(8)}
        assert projections["s7"].predicted_grade == "A"
        assert projections["s0"].predicted_grade == "C"
        assert all(
            abs(sum(p.grade_probabilities.values()) - 1) < 1e-3 for p in projections.values()
        )
        assert any(p.confidence < 0.99 for p in projections.values())
