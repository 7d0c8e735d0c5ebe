"""End to end: submitted essays go through all four stages with the real LLM provider service
(heuristic judge): gpt, rag grounded in the retrieved reference passages (cited back), fusion.
Texts that game a feature-based judge get a lower fused score than an honest weak answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from common_core.testing import eventually
from common_core.testing.service_process import running_service
from llm_provider_service.testing.judge_tricks import OFF_TOPIC
from submission_service.testing.harness import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET_KEY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEFINITION = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "services/submission_service/content/intro-writing.json"
    ).read_text("utf-8")
)
[ESSAY_QUESTION] = [
    q for m in DEFINITION["modules"] for q in m["questions"] if q["id"] == "short-essay"
]
PROMPT = ESSAY_QUESTION["prompt"]
RUBRIC_TEXT = " ".join(f"{k} {v}" for k, v in ESSAY_QUESTION["rubric"].items())
GOOD = (
    "Schools should move to digital textbooks, but carefully. Digital books cost less to "
    "update, so students always read current material, and they weigh nothing in a backpack. "
    "Teachers can add videos and quizzes that help students who learn in different ways.\n\n"
    "However, screens can distract younger learners, and not every family has a reliable "
    "device or fast internet at home. A sensible plan would therefore lend devices through the "
    "school and keep printed copies for reading-heavy subjects. In conclusion, the change is "
    "worth making if no student is left behind."
)
# An E-grade answer: on the question, an opinion with one reason, many errors, no development.
HONEST_WEAK = (
    "I think digital books is better then printed books. They are cheap and the bag is not so "
    "heavy when you walk to school. Also you can read on the tablet in the bus.\n\n"
    "But some students dont have computer at home and the internet is slow. So the school "
    "should give them a computer. Thats why I think schools should use digital textbooks."
)


def _shuffled(text: str) -> str:
    tokens = text.split()
    random.Random(0).shuffle(tokens)
    return " ".join(tokens)


def _keywords(*sources: str) -> str:
    seen: dict[str, None] = {}
    for word in " ".join(sources).replace(",", " ").replace(".", " ").split():
        if len(word) > 3:
            seen.setdefault(word.lower().strip(":;?!()"), None)
    return ", ".join(seen)


TRICKS = {
    "prompt_pasted": PROMPT,
    "good_shuffled": _shuffled(GOOD),
    "paragraph_padded": "\n\n".join([GOOD.split("\n\n")[1]] * 6),
    "keyword_list": _keywords(PROMPT, RUBRIC_TEXT),
    "off_topic": OFF_TOPIC,
}


async def _score(client: httpx.AsyncClient, answer: str) -> dict[str, Any]:
    """Answer the essay as a new learner, submit, and return the completed status."""
    headers = {"X-Anonymous-Token": str(uuid.uuid4())}
    created = await client.post(
        "/api/assessments/responses",
        json={"module_slug": "argument", "question_id": "short-essay", "answer_text": answer},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
    )
    aid = started.json()["assessment_id"]
    submitted = await client.post(
        f"/api/assessments/{aid}/submit", json={}, headers={**headers, "Idempotency-Key": aid}
    )
    assert submitted.status_code == 202, submitted.text

    async def status() -> dict[str, Any]:
        reply = await client.get(f"/api/assessments/{aid}/status", headers=headers)
        body: dict[str, Any] = reply.json()
        return body

    return await eventually(
        status, until=lambda s: s["status"] == "completed", timeout=120, what="completed"
    )


async def test_four_stages_with_the_heuristic_judge_and_tricks_score_below_honest_work(
    database_url: str, postgres_server_url: str, kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "1",
        "LOG_LEVEL": "WARNING",
    }
    submission_env = {
        **common,
        "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "WEBHOOK_SECRET_KEYS": TEST_WEBHOOK_SECRET_KEY,
    }
    # The LLM provider's own database on the server (huleedu_llm_provider), not submission's.
    llm_env = {**common, "DATABASE_URL": postgres_server_url, "LLM_DEFAULT_PROVIDER": "heuristic"}
    answers = {"good": GOOD, "honest_weak": HONEST_WEAK, **TRICKS}
    async with contextlib.AsyncExitStack() as stack:
        submission = await stack.enter_async_context(
            running_service("submission_service", env=submission_env, log_dir=tmp_path)
        )
        await stack.enter_async_context(
            running_service(
                "llm_provider_service",
                env=llm_env,
                log_dir=tmp_path,
                unset_prefixes=("LLM_DEFAULT_MODEL",),
            )
        )
        async with httpx.AsyncClient(base_url=submission.url, timeout=30) as client:
            statuses = dict(
                zip(
                    answers,
                    await asyncio.gather(*(_score(client, a) for a in answers.values())),
                    strict=True,
                )
            )

    good = statuses["good"]
    assert {s["name"]: (s["weight"], s["status"]) for s in good["stages"]} == {
        "rule_score": (0.2, "completed"),
        "gpt": (0.3, "completed"),
        "rag": (0.3, "completed"),
        "fusion": (0.2, "completed"),
    }
    jobs = {j["job_type"]: j for j in good["jobs"]}
    # The heuristic judge grounded the rag stage in the passages retrieved for the answer.
    assert jobs["rag"]["result"]["citations"]
    passage_ids = {p["id"] for p in DEFINITION["reference_passages"]}
    assert set(jobs["rag"]["result"]["citations"]) <= passage_ids
    [essay] = good["result"]["essays"]
    assert {p["stage"] for p in essay["fusion"]["parts"]} == {"rule_score", "gpt", "rag"}
    assert essay["fusion"]["citations"] == jobs["rag"]["result"]["citations"]

    def fused(name: str) -> float:
        [item] = statuses[name]["result"]["essays"]
        return float(item["fusion"]["overall"])

    honest = fused("honest_weak")
    assert fused("good") > honest
    for trick in TRICKS:
        assert fused(trick) < honest, (trick, fused(trick), honest)
