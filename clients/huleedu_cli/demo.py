"""`make demo`: the main job, end to end on the real stack.

1. Start Kafka, PostgreSQL and the three services (devstack), unless they are already running.
2. Run the sample essay batch as an upstream orchestrator would: the `huleedu cj submit` CLI
   publishes a CJ request event and waits for the completed event, then prints the ranking and
   how well it matches the intended order. One simulated teacher judges beside the AI (10 % of
   the comparisons, on top of the AI's budget) through its private judging link, reading the
   essays on the page as a person would; the ranking's report ends with the teacher's agreement
   with the AI and its misfit.
3. Submit one answer through the submission API, complete it, and show its rubric score.
4. Answer and submit a whole assessment, and follow its essay answer through the four stages
   (rule_score, gpt, rag grounded in the course's reference passages, fusion) to the fused score.
5. Stop what step 1 started.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from devstack import kafka, postgres, services, stack
from huleedu_cli.inputs import load_anchors, load_essays, load_intended_order
from huleedu_cli.simulated_teacher import judge_as_teacher, quality_by_text

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
OUTPUT = REPO_ROOT / "demo-output"
SCORE_TIMEOUT_SECONDS = 120.0

DEMO_ANSWER = (
    "Schools should move to digital textbooks, but gradually. Digital books are cheaper to "
    "update, so students read current facts instead of editions that are ten years old, and a "
    "tablet weighs less than a bag of heavy books. Teachers can also add videos and quizzes that "
    "help students who learn in different ways. On the other hand, screens tire the eyes and "
    "make it easy to drift to games, and not every family has fast internet at home. For these "
    "reasons schools should lend devices, keep printed copies for those who need them, and "
    "train teachers before replacing paper completely."
)

console = Console(highlight=False)


def _provider_note() -> str:
    if os.environ.get("OPENAI_API_KEY"):
        return "OPENAI_API_KEY is set: the LLM provider service judges with OpenAI."
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "ANTHROPIC_API_KEY is set: the LLM provider service judges with Anthropic."
    return (
        "No OPENAI_API_KEY or ANTHROPIC_API_KEY: the LLM provider service uses its offline "
        "heuristic judge (transparent text features, not a language model)."
    )


def _something_running(settings: stack.StackSettings) -> bool:
    state = settings.state_dir
    return (
        kafka.running_kafka(state) is not None
        or postgres.running_postgres(state) is not None
        or any(services.running_service(state, s) is not None for s in services.SERVICES)
    )


def _service_url(name: str) -> str:
    service = next(s for s in services.SERVICES if s.name == name)
    return f"http://127.0.0.1:{service.port(os.environ)}"


def run_cj_batch(
    *,
    kafka_bootstrap_servers: str,
    cj_url: str,
    essays: Path = SAMPLES / "essays",
    anchors: Path | None = SAMPLES / "anchors",
    output: Path = OUTPUT,
    topic_prefix: str | None = None,
    with_teacher: bool = True,
) -> None:
    """The upstream role: the CLI submits the sample batch and prints the ranking; with a
    simulated teacher judging beside the AI through its link."""
    output.mkdir(parents=True, exist_ok=True)
    entity_ref = f"demo-{uuid.uuid4().hex[:10]}"
    command = [
        sys.executable, "-m", "huleedu_cli.app", "cj", "submit", str(essays),
        "--prompt-file", str(SAMPLES / "prompt.md"),
        "--rubric-file", str(SAMPLES / "rubric.md"),
        "--intended-order", str(SAMPLES / "intended_order.csv"),
        "--kafka", kafka_bootstrap_servers,
        "--cj-url", cj_url,
        "--out", str(output),
        "--chart", str(output / "scores.png"),
        "--timeout", "600",
        "--entity-ref", entity_ref,
    ]  # fmt: skip
    if anchors is not None:
        command += ["--anchors", str(anchors)]
    if topic_prefix is not None:
        command += ["--topic-prefix", topic_prefix]
    if with_teacher:
        command += [
            "--judge", f"{DEMO_TEACHER}=Demo Teacher (simulated)",
            "--human-share", "0.1",
            "--human-deadline", "+15m",
        ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT)  # noqa: S603 - fixed argv
    try:
        if with_teacher:
            _teacher_judges(cj_url, entity_ref, essays, anchors)
        returncode = process.wait(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if returncode != 0:
        raise DemoError(f"the CJ batch did not complete (exit {returncode})")


DEMO_TEACHER = "demo-teacher"


def _teacher_quality(essays: Path, anchors: Path | None) -> Callable[[str], float | None]:
    """What the simulated teacher knows: the sample's intended order, and for an anchor the
    mean intended rank of the essays meant for its grade."""
    intended = load_intended_order(SAMPLES / "intended_order.csv")
    ranks = {essay_id: placement.rank for essay_id, placement in intended.items()}
    texts = {essay.essay_id: essay.text_content for essay in load_essays(essays)}
    if anchors is not None:
        by_grade: dict[str, list[int]] = {}
        for placement in intended.values():
            if placement.grade is not None:
                by_grade.setdefault(placement.grade, []).append(placement.rank)
        for anchor in load_anchors(anchors):
            if anchor.grade in by_grade:
                texts[anchor.essay_id] = anchor.text_content
                ranks[anchor.essay_id] = round(statistics.mean(by_grade[anchor.grade]))
    return quality_by_text(texts, ranks)


def _teacher_judges(cj_url: str, entity_ref: str, essays: Path, anchors: Path | None) -> None:
    """Wait for the batch and the teacher's link, then judge its pairs on the judging page."""
    link = _teacher_link(cj_url, entity_ref)
    console.print(
        f"simulated teacher: judging on its private page {link.split('/judge/')[0]}/judge/…"
    )
    report = judge_as_teacher(link, _teacher_quality(essays, anchors), seed=7)
    console.print(
        f"simulated teacher: judged {report.judged} pairs: "
        f"{report.agreed_with_intended_order} as the intended order has them, "
        f"{report.judged - report.agreed_with_intended_order - report.by_coin} the other way "
        f"(its mistakes), {report.by_coin} by a coin (essays it could not tell apart)"
    )


def _teacher_link(cj_url: str, entity_ref: str) -> str:
    deadline = time.monotonic() + SCORE_TIMEOUT_SECONDS
    with httpx.Client(base_url=cj_url, timeout=10.0) as client:
        while time.monotonic() < deadline:
            found = client.get("/api/v1/batches", params={"entity_ref": entity_ref})
            if found.status_code == httpx.codes.OK:
                judges = client.get(f"/api/v1/batches/{found.json()['batch_id']}/judges")
                if judges.status_code == httpx.codes.OK:
                    for judge in judges.json()["judges"]:
                        if judge["judge_id"] == DEMO_TEACHER:
                            return str(judge["link"])
            time.sleep(0.3)
    raise DemoError(
        f"no judging link for the simulated teacher within {SCORE_TIMEOUT_SECONDS:.0f}s"
    )


class DemoError(RuntimeError):
    """A demo step did not reach its result."""


def _wait_for_score(client: httpx.Client, headers: dict[str, str], response_id: str) -> Any:
    deadline = time.monotonic() + SCORE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        listing = client.get(
            "/api/assessments/responses",
            params={"module_slug": "argument", "question_id": "short-essay"},
            headers=headers,
        )
        listing.raise_for_status()
        for response in listing.json()["responses"]:
            if response["id"] == response_id and response["scores"]:
                return response["scores"][0]
        time.sleep(0.5)
    raise DemoError(f"no rubric score within {SCORE_TIMEOUT_SECONDS:.0f}s")


def score_one_answer(submission_url: str) -> dict[str, Any]:
    """The learner role: create an answer, complete it, and read back its rubric score."""
    headers = {"X-Anonymous-Token": str(uuid.uuid4())}
    with httpx.Client(base_url=submission_url, timeout=10.0) as client:
        created = client.post(
            "/api/assessments/responses",
            json={
                "question_id": "short-essay",
                "module_slug": "argument",
                "answer_text": DEMO_ANSWER,
            },
            headers=headers,
        )
        created.raise_for_status()
        response_id = created.json()["id"]
        completed = client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"answer_text": DEMO_ANSWER, "completed_at": datetime.now(UTC).isoformat()},
            headers=headers,
        )
        completed.raise_for_status()
        console.print(
            f"answer {response_id} completed; scoring requested: "
            f"{completed.json()['scoring_requested']} (the PATCH returned without waiting)"
        )
        score = _wait_for_score(client, headers, response_id)
    data = score["score_data"]
    table = Table(title="Rubric score of the demo answer")
    table.add_column("dimension")
    table.add_column("score (1-5)", justify="right")
    for dimension, value in data.get("scores", {}).items():
        table.add_row(dimension, str(value))
    table.add_row("[bold]overall[/]", f"[bold]{data.get('overall')}[/]")
    console.print(table)
    console.print(f"feedback: {data.get('feedback')}")
    console.print(f"model: {score['model_id']}, prompt version: {score['prompt_version']}")
    return dict(score)


ASSESSMENT_ANSWERS = (
    ("foundations", "thesis-definition", "b"),
    ("foundations", "paragraph-structure", "a"),
    ("foundations", "writing-experience", "weekly"),
    ("argument", "short-essay", DEMO_ANSWER),
)


def _stage_line(status: dict[str, Any]) -> str:
    stages = ", ".join(
        f"{s['name']} {s['status']} ({s['done']}/{s['total']})" for s in status["stages"]
    )
    return f"progress {status['progress']:.2f}: {stages}"


def _show_fused_essay(status: dict[str, Any]) -> None:
    [essay] = status["result"]["essays"]
    fusion = essay["fusion"]
    table = Table(title="The essay answer's four stages")
    table.add_column("stage")
    table.add_column("job state")
    table.add_column("score (1-5)", justify="right")
    table.add_column("fusion weight", justify="right")
    jobs = {j["job_type"]: j for j in status["jobs"]}
    for part in fusion["parts"]:
        state = (
            "completed (inline at submit)"
            if part["stage"] == "rule_score"
            else jobs[part["stage"]]["status"]
        )
        score = "-" if part["score"] is None else f"{part['score']:.2f}"
        table.add_row(part["stage"], state, score, f"{part['weight']:.2f}")
    table.add_row(
        "[bold]fusion[/]", jobs["fusion"]["status"], f"[bold]{fusion['overall']:.2f}[/]", ""
    )
    console.print(table)
    console.print(
        f"rag cited: {', '.join(fusion['citations']) or '(none)'}; gpt/rag disagreement: "
        f"{fusion['disagreement']}; degraded: {fusion['degraded']}"
    )
    result = status["result"]
    console.print(
        f"assessment result: {result['total']:.2f} / {result['max_total']:.2f} points "
        f"({result['percent']}%), essay {essay['score']:.2f} / {essay['max_score']:.2f}"
    )


def score_an_assessment(submission_url: str) -> dict[str, Any]:
    """The learner role for a whole assessment: answer, submit, follow the stages to the end."""
    headers = {"X-Anonymous-Token": str(uuid.uuid4())}
    with httpx.Client(base_url=submission_url, timeout=10.0) as client:
        for module_slug, question_id, answer in ASSESSMENT_ANSWERS:
            client.post(
                "/api/assessments/responses",
                json={
                    "module_slug": module_slug,
                    "question_id": question_id,
                    "answer_text": answer,
                },
                headers=headers,
            ).raise_for_status()
        started = client.post(
            "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
        )
        started.raise_for_status()
        assessment_id = started.json()["assessment_id"]
        submitted = client.post(
            f"/api/assessments/{assessment_id}/submit",
            json={},
            headers={**headers, "Idempotency-Key": assessment_id},
        )
        submitted.raise_for_status()
        jobs = ", ".join(f"{j['job_type']} {j['status']}" for j in submitted.json()["essay_jobs"])
        console.print(f"assessment {assessment_id} submitted; essay jobs: {jobs}")
        deadline = time.monotonic() + SCORE_TIMEOUT_SECONDS
        seen: set[str] = set()
        while time.monotonic() < deadline:
            reply = client.get(f"/api/assessments/{assessment_id}/status", headers=headers)
            reply.raise_for_status()
            status = reply.json()
            line = _stage_line(status)
            if line not in seen:  # print each change of state once
                seen.add(line)
                console.print(line)
            if status["status"] == "completed":
                _show_fused_essay(status)
                return dict(status)
            time.sleep(0.2)
    raise DemoError(f"the assessment did not complete within {SCORE_TIMEOUT_SECONDS:.0f}s")


def main() -> int:
    """Run the demo; returns the process exit code."""
    settings = stack.settings_from_environment()
    reuse = _something_running(settings)
    console.rule("[bold]HuleEdu demo")
    console.print(_provider_note())
    endpoints = stack.up(settings, with_services=True)
    try:
        console.rule("Comparative judgement of the sample batch (24 essays, 4 anchors)")
        run_cj_batch(
            kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
            cj_url=_service_url("cj_assessment_service"),
        )
        console.rule("Rubric scoring of one answer through the submission API")
        score_one_answer(_service_url("submission_service"))
        console.rule("A whole assessment: an essay answer's four stages")
        score_an_assessment(_service_url("submission_service"))
        console.rule("done")
        console.print(f"outputs: {OUTPUT}/ranking.csv, result.json, scores.png")
    except DemoError as error:
        console.print(f"[bold red]demo failed:[/] {error}")
        return 1
    finally:
        if reuse:
            console.print("the stack was already running before the demo; leaving it running")
        else:
            stack.down(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
