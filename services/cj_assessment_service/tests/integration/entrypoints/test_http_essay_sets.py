"""Essay-set uploads (claim check) over HTTP and requests naming them, on the real database and
broker."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from cj_assessment_service.adapters.tables import cj_essay_sets
from cj_assessment_service.application.essay_sets import essay_digest_line
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    CJRuntime,
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
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EssaySetReference,
)
from common_core.events.envelope import EventEnvelope
from common_core.limits import MAX_ID_CHARS
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration

NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(*items: dict[str, Any] | str) -> bytes:
    """Lines of an upload body; a str is sent as it is (for broken lines)."""
    return b"".join(
        (item if isinstance(item, str) else json.dumps(item)).encode("utf-8") + b"\n"
        for item in items
    )


def essay_lines(n: int) -> bytes:
    return ndjson(*({"essay_id": f"e{i}", "text_content": f"essay {i} text"} for i in range(n)))


async def upload(service: CJRuntime, body: bytes, **headers: str) -> tuple[int, Any]:
    response = await service.app.test_client().post(
        "/api/v1/essay-sets", data=body, headers=headers or NDJSON
    )
    return response.status_code, await response.get_json()


async def stored_sets(service: CJRuntime, set_id: uuid.UUID | None = None) -> int:
    """Stored essay sets (all, or the one with `set_id`)."""
    query = select(func.count()).select_from(cj_essay_sets)
    if set_id is not None:
        query = query.where(cj_essay_sets.c.id == set_id)
    async with service.sessions() as session:
        return int(await session.scalar(query) or 0)


def by_reference(
    settings: Settings,
    entity_ref: str,
    reference: EssaySetReference,
    inline: int = 0,
) -> EventEnvelope[CJAssessmentRequestV1]:
    envelope = request_envelope(settings, entity_ref, essays(inline))
    data = envelope.data.model_copy(update={"essay_set": reference})
    return envelope.model_copy(update={"data": data})


class TestUpload:
    async def test_upload_answers_id_count_and_digest_and_a_request_naming_it_completes(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service, judging(settings, service.producer):
            status, receipt = await upload(service, essay_lines(5))
            assert status == 201, receipt
            reference = EssaySetReference(
                essay_set_id=uuid.UUID(receipt["essay_set_id"]),
                content_sha256=receipt["content_sha256"],
            )
            await submit(service, by_reference(settings, "set-ref", reference))
            batch = await batch_in_state(service, "set-ref", BatchState.COMPLETED, timeout=90)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        expected = hashlib.sha256(
            b"".join(essay_digest_line(f"e{i}", f"essay {i} text") for i in range(5))
        ).hexdigest()
        assert receipt["essay_count"] == 5
        assert receipt["content_sha256"] == expected
        assert batch.essay_count == 5
        assert len(events) == 1
        rankings = events[0].data.rankings
        assert [r.essay_id for r in rankings] == ["e4", "e3", "e2", "e1", "e0"]

    async def test_a_bad_essay_is_refused_with_422_naming_it_and_nothing_is_stored(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        cases = [
            (ndjson({"essay_id": "a", "text_content": "x"}, "{not json"), "essays[1]"),
            (ndjson({"essay_id": "a"}), "essays[0].text_content"),
            (
                ndjson({"essay_id": "a", "text_content": "bad \u0000 text"}),
                "essays[0].text_content",
            ),
            (
                ndjson({"essay_id": "a" * (MAX_ID_CHARS + 1), "text_content": "x"}),
                "essays[0].essay_id",
            ),
            (ndjson({"essay_id": "a", "text_content": "   "}), "essays[0].text_content"),
            (ndjson("[1, 2]"), "essays[0]"),
            (
                ndjson(
                    {"essay_id": "a", "text_content": "x"},
                    {"essay_id": "b", "text_content": "y"},
                    {"essay_id": "a", "text_content": "z"},
                ),
                "essays[2].essay_id",
            ),
            (b"\n\n", "essays"),
        ]
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            before = await stored_sets(service)
            answers = [await upload(service, body) for body, _ in cases]
            after = await stored_sets(service)
        for (status, answer), (_, field) in zip(answers, cases, strict=True):
            assert status == 422, answer
            assert answer["code"] == "validation"
            assert answer["field"] == field
            assert field in answer["message"]
        assert after == before

    async def test_wrong_media_type_and_oversized_bodies_are_refused_naming_the_field(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url, kafka_bootstrap_servers, unique_prefix(), essay_set_max_bytes=2048
        )
        async with running_service(settings) as service:
            media_status, media = await upload(
                service, essay_lines(2), **{"Content-Type": "application/json"}
            )
            size_status, size = await upload(service, essay_lines(200))
        assert (media_status, media["field"]) == (415, "Content-Type")
        assert (size_status, size["field"]) == (413, "body")
        assert "ESSAY_SET_MAX_BYTES" in size["message"]


class TestRequestsNamingASet:
    async def test_unknown_mismatched_or_doubled_references_fail_naming_the_field(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            _, receipt = await upload(service, essay_lines(3))
            known = uuid.UUID(receipt["essay_set_id"])
            cases = {
                "unknown": (EssaySetReference(essay_set_id=uuid.uuid4()), 0),
                "mismatch": (EssaySetReference(essay_set_id=known, content_sha256="0" * 64), 0),
                "both": (EssaySetReference(essay_set_id=known), 2),
            }
            for entity_ref, (reference, inline) in cases.items():
                await submit(service, by_reference(settings, entity_ref, reference, inline))
            for entity_ref in cases:
                await batch_in_state(service, entity_ref, BatchState.FAILED)
            events = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=3
            )
        fields = {e.data.entity_ref: e.data.error_detail.details["field"] for e in events}
        assert fields == {
            "unknown": "essay_set.essay_set_id",
            "mismatch": "essay_set.content_sha256",
            "both": "essay_set",
        }
        assert all(e.data.error_detail.code == "validation" for e in events)

    async def test_an_expired_set_is_deleted_and_a_request_naming_it_then_fails(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            essay_set_retention_seconds=0.5,
            essay_set_cleanup_interval_seconds=0.2,
        )
        async with running_service(settings) as service:
            status, receipt = await upload(service, essay_lines(3))
            assert status == 201
            set_id = uuid.UUID(receipt["essay_set_id"])
            await eventually(
                lambda: stored_sets(service, set_id),
                until=lambda n: n == 0,
                what="expired set deleted",
            )
            reference = EssaySetReference(essay_set_id=set_id)
            await submit(service, by_reference(settings, "late-ref", reference))
            await batch_in_state(service, "late-ref", BatchState.FAILED)
            events = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=1
            )
        assert [e.data.error_detail.details["field"] for e in events] == ["essay_set.essay_set_id"]
