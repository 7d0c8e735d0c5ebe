"""Two teachers judge a real CJ batch's pairs in headless Chromium.

The CJ and LLM provider services run as processes (the AI is the heuristic judge); one batch of
eight sample essays asks for human judging by two teachers. Once the AI has answered about as
many pairs as there are essays, the planner gives each teacher a handful of pairs, and:

- teacher 1, at desktop width, judges by keyboard (with the confirm) and by mouse, skips once;
- a refused verdict changes nothing: another judge's link (404), a tampered link (403), a
  second submit of a judged pair (409);
- teacher 2, at 375 px, sees the essays stacked and an accessible page (axe-core), judges by
  mouse;
- the batch completes with the AI-human agreement in its statistics;
- neither service logged an essay's text or a judge's link.

The tests share the stack and the batch and run in the order written (each needs the state the
previous one left). The teachers choose as the sample essays were written to rank
(samples/intended_order.csv). Screenshots go to docs/images when UPDATE_SCREENSHOTS=1, else to
a temporary directory.
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver import ActionChains, Chrome, Keys
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from cj_assessment_service.testing.human_judges import JUDGE_LINK_SECRET
from common_core.events import (
    CJAssessmentCompletedV1,
    EssayToProcess,
    HumanJudge,
    HumanJudgingRequest,
)
from common_core.testing.browser import OpenChromium, axe_violations, save_screenshot
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
SCREENSHOTS = REPO / "docs" / "images"
# Two essays of each grade A to C, one D, one E: clearly different in quality.
ESSAY_IDS = ("s07", "s02", "s11", "s04", "s01", "s13", "s05", "s03")
TEACHERS = (
    HumanJudge(judge_id="t1", display_name="Ms Lind"),
    HumanJudge(judge_id="t2", display_name="Mr Berg"),
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
# Deadlines for things that happen in the services' own time; never asserted as durations.
PAIRS_GIVEN_WITHIN = 120.0
PAGE_LOAD_WITHIN = 30.0
BATCH_DONE_WITHIN = 180.0
PROGRESS = re.compile(r"Judged (\d+) of (\d+)")
PAIR_ID_INPUT = '<input type="hidden" name="pair_id" value="([0-9a-f-]{36})">'


def _intended_rank() -> dict[str, int]:
    with (SAMPLES / "intended_order.csv").open(newline="") as rows:
        return {row["essay_id"]: int(row["intended_rank"]) for row in csv.DictReader(rows)}


def _normalised(text: str) -> str:
    return " ".join(text.split())


ESSAYS = {essay_id: (SAMPLES / "essays" / f"{essay_id}.txt").read_text() for essay_id in ESSAY_IDS}
PROMPT = (SAMPLES / "prompt.md").read_text()
RANK = _intended_rank()
ESSAY_BY_TEXT = {_normalised(text): essay_id for essay_id, text in ESSAYS.items()}


@dataclass(frozen=True)
class Stack:
    """The broker, the topic prefix and the two services' processes."""

    kafka: str
    prefix: str
    cj: ServiceProcess
    llm: ServiceProcess


@dataclass
class JudgingBatch:
    """The running batch, its teachers' links, what the tests saw, and its outcome (a task)."""

    cj_url: str
    batch_id: str
    links: dict[str, str]
    outcome: asyncio.Task[CJAssessmentCompletedV1]
    service_logs: tuple[Path, ...]
    pairs_seen: dict[str, list[str]] = field(default_factory=dict)

    def token(self, judge_id: str) -> str:
        """The judge's link token (the path after /judge/)."""
        return self.links[judge_id].rsplit("/judge/", 1)[1]

    def judges(self) -> dict[str, dict[str, Any]]:
        """The organiser's view of every judge: `GET /api/v1/batches/<id>/judges`."""
        response = httpx.get(f"{self.cj_url}/api/v1/batches/{self.batch_id}/judges", timeout=10)
        response.raise_for_status()
        return {judge["judge_id"]: judge for judge in response.json()["judges"]}


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    postgres_server_url: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The LLM provider (heuristic judge) and the CJ service (links signed) as processes."""
    prefix = f"jp{uuid.uuid4().hex[:10]}"
    logs = tmp_path_factory.mktemp("judging-page-logs")
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
    }
    llm = await start_service(
        "llm_provider_service", env={**common, "DATABASE_URL": postgres_server_url}, log_dir=logs
    )
    try:
        cj_env = {
            **common,
            "DATABASE_URL": database_url,
            "JUDGE_LINK_SECRET": JUDGE_LINK_SECRET,
            "MONITOR_INTERVAL_SECONDS": "0.5",
        }
        cj = await start_service("cj_assessment_service", env=cj_env, log_dir=logs)
        try:
            yield Stack(kafka_bootstrap_servers, prefix, cj, llm)
        finally:
            cj.stop()
    finally:
        llm.stop()


async def _poll(http: httpx.AsyncClient, path: str, outcome: asyncio.Task[Any]) -> Any:
    """GET path until it answers 200 (the JSON), or fail once PAIRS_GIVEN_WITHIN has passed or
    the batch has ended."""
    async with asyncio.timeout(PAIRS_GIVEN_WITHIN):
        while True:
            if outcome.done():
                raise AssertionError(f"the batch ended before its judges had pairs: {outcome!r}")
            response = await http.get(path)
            if response.status_code == 200:
                return response.json()
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def batch(stack: Stack) -> AsyncIterator[JudgingBatch]:
    """The batch, once the planner has given both teachers their pairs."""
    cj = stack.cj
    entity_ref = f"judging-page-{uuid.uuid4().hex[:8]}"
    request = build_cj_request(
        [EssayToProcess(essay_id=e, text_content=text) for e, text in ESSAYS.items()],
        entity_ref=entity_ref,
        essay_instructions=PROMPT,
        human_judging=HumanJudgingRequest(
            judges=list(TEACHERS), share=0.2, deadline=datetime.now(UTC) + timedelta(minutes=20)
        ),
    )
    outcome = asyncio.create_task(
        run_cj_batch(
            request,
            bootstrap_servers=stack.kafka,
            topic_prefix=stack.prefix,
            cj_url=cj.url,
            timeout=BATCH_DONE_WITHIN + 2 * PAIRS_GIVEN_WITHIN,
        )
    )
    try:
        async with httpx.AsyncClient(base_url=cj.url, timeout=10) as http:
            found = await _poll(http, f"/api/v1/batches?entity_ref={entity_ref}", outcome)
            path = f"/api/v1/batches/{found['batch_id']}/judges"
            async with asyncio.timeout(PAIRS_GIVEN_WITHIN):
                while True:
                    judges = (await _poll(http, path, outcome))["judges"]
                    if all(judge["assigned"] > 0 for judge in judges):
                        break
                    await asyncio.sleep(0.2)
        links = {judge["judge_id"]: judge["link"] for judge in judges}
        logs = (cj.log_path, stack.llm.log_path)
        yield JudgingBatch(cj.url, str(found["batch_id"]), links, outcome, logs)
    finally:
        if not outcome.done():
            outcome.cancel()
        await asyncio.gather(outcome, return_exceptions=True)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/images with UPDATE_SCREENSHOTS=1, else a temporary directory (the suite never writes
    the repository)."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("judging-page-screenshots")


# The browser -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownPair:
    """The pair on the page: its id (the form's hidden input) and the two essays shown."""

    pair_id: str
    essay_a: str
    essay_b: str

    def better(self) -> str:
        """The letter (A or B) of the essay the samples were written to rank higher."""
        return "A" if RANK[self.essay_a] < RANK[self.essay_b] else "B"


def shown_pair(driver: Chrome) -> ShownPair:
    """The pair the page shows, its texts mapped back to the sample essays' ids."""
    pair_id = driver.find_element(By.CSS_SELECTOR, "#verdict-form input[name=pair_id]")

    def essay(element_id: str) -> str:
        text = driver.find_element(By.ID, element_id).get_attribute("textContent") or ""
        return ESSAY_BY_TEXT[_normalised(text)]

    return ShownPair(
        pair_id.get_attribute("value") or "", essay("essay-a-text"), essay("essay-b-text")
    )


def progress(driver: Chrome) -> tuple[int, int]:
    """(judged, assigned) as the page's progress label says."""
    label = driver.find_element(By.CSS_SELECTOR, "label[for=progress]").text
    found = PROGRESS.fullmatch(label)
    assert found is not None, label
    return int(found[1]), int(found[2])


def has_pair(driver: Chrome) -> bool:
    """Whether the page shows a pair to judge."""
    return bool(driver.find_elements(By.ID, "verdict-form"))


def leave_page(driver: Chrome, act: Callable[[], object]) -> None:
    """Do what submits the page (`act`), then wait until the next page has loaded.

    The page is marked first; the next document lacks the mark. While Chromium swaps documents a
    WebDriver call can fail with a transient error ("Node with given id does not belong to the
    document", "unhandled inspector error"): the wait asks again.
    """
    driver.execute_script("window.judgingPageLeft = true")
    act()
    WebDriverWait(driver, PAGE_LOAD_WITHIN, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return !window.judgingPageLeft && document.readyState === 'complete'"
        )
    )


def choose_by_keyboard(driver: Chrome, letter: str) -> str:
    """Press ← (A) or → (B), then Enter on the confirm; the confirm message shown between."""
    ActionChains(driver).send_keys(Keys.ARROW_LEFT if letter == "A" else Keys.ARROW_RIGHT).perform()
    assert driver.find_element(By.ID, "confirm-panel").is_displayed()
    message = driver.find_element(By.ID, "confirm-message").text
    leave_page(driver, ActionChains(driver).send_keys(Keys.ENTER).perform)
    return message


def choose_by_mouse(driver: Chrome, letter: str) -> None:
    """Click "Essay A is better" or "Essay B is better" (submits at once)."""
    leave_page(driver, driver.find_element(By.ID, f"choose-{letter.lower()}").click)


def urls_visited(driver: Chrome) -> set[str]:
    """The page's URL and every URL its document and resources were fetched from."""
    names = driver.execute_script("return performance.getEntries().map((entry) => entry.name)")
    return {driver.current_url, *names}


def essay_text_in(urls: set[str]) -> list[str]:
    """The visited URLs that carry the start of any essay (decoded as a form would be)."""
    starts = [_normalised(text)[:30] for text in ESSAYS.values()]
    return [url for url in urls if any(start in _normalised(unquote_plus(url)) for start in starts)]


def essay_boxes(driver: Chrome) -> tuple[dict[str, int], dict[str, int]]:
    """The boxes (x, y, width, height) of essay A and essay B."""
    a, b = (driver.find_element(By.ID, f"essay-{letter}").rect for letter in ("a", "b"))
    return a, b


# The tests ---------------------------------------------------------------------------------


class TestTwoTeachersJudgeInChromium:
    """In order: the refusals before any verdict, teacher 1 (desktop), the double submit,
    teacher 2 (phone), the completed batch, the logs."""

    def test_another_judges_link_and_a_tampered_link_cannot_judge_teacher_1s_pair(
        self, batch: JudgingBatch
    ) -> None:
        with httpx.Client(base_url=batch.cj_url, timeout=10) as http:
            page_1 = http.get(f"/judge/{batch.token('t1')}")
            pair_id = re.findall(PAIR_ID_INPUT, page_1.text)[0]
            page_2 = http.get(f"/judge/{batch.token('t2')}")
            before = batch.judges()
            as_teacher_2 = http.post(
                f"/judge/{batch.token('t2')}/verdicts", data={"pair_id": pair_id, "winner": "A"}
            )
            token = batch.token("t1")
            signature_at = token.index(".") + 5  # inside the signature, not its padding bits
            flipped = "A" if token[signature_at] != "A" else "B"
            tampered = f"{token[:signature_at]}{flipped}{token[signature_at + 1 :]}"
            with_tampered_link = http.post(
                f"/judge/{tampered}/verdicts", data={"pair_id": pair_id, "winner": "A"}
            )
            tampered_page = http.get(f"/judge/{tampered}")
            after = batch.judges()
            page_1_after = http.get(f"/judge/{batch.token('t1')}")

        assert page_1.status_code == page_2.status_code == 200
        assert pair_id not in page_2.text
        assert as_teacher_2.status_code == 404
        assert "This comparison is not assigned to you." in as_teacher_2.text
        assert with_tampered_link.status_code == 403
        assert tampered_page.status_code == 403
        assert "This judging link is not valid" in tampered_page.text
        assert after == before
        assert after["t1"]["judged"] == after["t2"]["judged"] == 0
        assert re.findall(PAIR_ID_INPUT, page_1_after.text)[0] == pair_id

    def test_teacher_1_at_desktop_width_judges_by_keyboard_and_mouse_and_skips_once(
        self, batch: JudgingBatch, chromium_window: OpenChromium, screenshots: Path
    ) -> None:
        assigned = batch.judges()["t1"]["assigned"]
        assert assigned >= 3, "a skip must have pairs after it to come back behind"
        driver = chromium_window(**DESKTOP)
        driver.get(batch.links["t1"])
        urls = urls_visited(driver)
        essay_a, essay_b = essay_boxes(driver)
        first_progress = progress(driver)
        name = driver.find_element(By.ID, "judge-name").text
        prompt = driver.find_element(By.ID, "prompt").text
        desktop_shot = save_screenshot(driver, screenshots / "judging-page-desktop.png")

        seen: list[ShownPair] = []
        skipped: ShownPair | None = None
        progress_after: list[tuple[int, int]] = []
        confirm_messages: dict[str, str] = {}
        verdicts = 0
        for step in range(assigned + 1):  # every pair once, the skipped one twice
            pair = shown_pair(driver)
            seen.append(pair)
            if step == 1:
                skipped = pair
                leave_page(driver, driver.find_element(By.ID, "skip").click)
            elif verdicts % 2 == 0:
                confirm_messages[pair.better()] = choose_by_keyboard(driver, pair.better())
                verdicts += 1
            else:
                choose_by_mouse(driver, pair.better())
                verdicts += 1
            progress_after.append(progress(driver))
            urls |= urls_visited(driver)
        done = driver.find_element(By.ID, "done-message").text
        done_shot = save_screenshot(driver, screenshots / "judging-page-done.png")
        batch.pairs_seen["t1"] = [pair.pair_id for pair in seen]

        assert name == "Ms Lind"
        # The prompt is Markdown, shown rendered: its words, not its markup.
        assert _normalised(prompt) == _normalised(PROMPT.replace("# ", "").replace("**", ""))
        assert first_progress == (0, assigned)
        assert essay_b["x"] >= essay_a["x"] + essay_a["width"]  # side by side
        assert essay_b["y"] == essay_a["y"]
        assert skipped is not None
        assert seen[-1] == skipped  # the skipped pair came back last
        assert len({pair.pair_id for pair in seen}) == assigned
        # A verdict counts at once, a skip does not.
        assert progress_after == [(j, assigned) for j in (1, 1, *range(2, assigned + 1))]
        for letter, message in confirm_messages.items():
            assert message == f"You chose Essay {letter} \u2014 press Enter or click Confirm"
        assert done == "All your comparisons are judged. Thank you."
        assert not has_pair(driver)
        assert essay_text_in(urls) == []
        assert any("/judge/" in url for url in urls)
        assert desktop_shot.stat().st_size > 0
        assert done_shot.stat().st_size > 0

    def test_a_judged_pair_submitted_again_is_refused_and_changes_nothing(
        self, batch: JudgingBatch
    ) -> None:
        judged_pair = batch.pairs_seen["t1"][0]
        before = batch.judges()["t1"]
        with httpx.Client(base_url=batch.cj_url, timeout=10) as http:
            again = http.post(
                f"/judge/{batch.token('t1')}/verdicts", data={"pair_id": judged_pair, "winner": "B"}
            )
        after = batch.judges()["t1"]

        assert again.status_code == 409
        assert "You have already judged this comparison." in again.text
        assert after == before
        assert after["judged"] == after["assigned"]

    def test_teacher_2_on_a_375_pixel_screen_sees_stacked_accessible_pages_and_judges_by_mouse(
        self, batch: JudgingBatch, chromium_window: OpenChromium, screenshots: Path
    ) -> None:
        assigned = batch.judges()["t2"]["assigned"]
        driver = chromium_window(**PHONE)
        driver.get(batch.links["t2"])
        urls = urls_visited(driver)
        essay_a, essay_b = essay_boxes(driver)
        widths = driver.execute_script(
            "const root = document.documentElement; return [root.scrollWidth, root.clientWidth]"
        )
        pair_page_violations = axe_violations(driver)
        phone_shot = save_screenshot(driver, screenshots / "judging-page-phone.png")
        ActionChains(driver).send_keys(Keys.ARROW_LEFT).perform()
        confirm_shown = driver.find_element(By.ID, "confirm-panel").is_displayed()
        confirm_violations = axe_violations(driver)
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        confirm_after_escape = driver.find_element(By.ID, "confirm-panel").is_displayed()

        judged_after: list[int] = []
        while has_pair(driver) and len(judged_after) < assigned:
            choose_by_mouse(driver, shown_pair(driver).better())
            judged_after.append(progress(driver)[0])
            urls |= urls_visited(driver)
        done_violations = axe_violations(driver)

        assert essay_b["y"] >= essay_a["y"] + essay_a["height"]  # stacked
        assert essay_b["x"] == essay_a["x"]
        assert 0 < widths[0] <= widths[1] <= PHONE["width"]  # no horizontal scroll
        assert pair_page_violations == []
        assert confirm_shown
        assert confirm_violations == []
        assert not confirm_after_escape
        assert judged_after == list(range(1, assigned + 1))
        assert driver.find_element(By.ID, "done-message").is_displayed()
        assert done_violations == []
        assert essay_text_in(urls) == []
        assert phone_shot.stat().st_size > 0

    async def test_the_batch_completes_with_every_human_verdict_and_the_agreement(
        self, batch: JudgingBatch
    ) -> None:
        completed = await asyncio.wait_for(asyncio.shield(batch.outcome), BATCH_DONE_WITHIN)
        async with httpx.AsyncClient(base_url=batch.cj_url, timeout=10) as http:
            results = (await http.get(f"/api/v1/batches/{batch.batch_id}/results")).json()

        human = completed.statistics.human_judging
        assert human is not None
        assert human.judges_invited == 2
        assigned = sum(judge["assigned"] for judge in batch.judges().values())
        assert human.judged == human.assigned == assigned
        assert human.released == 0
        assert human.agreement is not None
        assert human.agreement_low is not None
        assert human.agreement_high is not None
        assert 0 <= human.agreement_low <= human.agreement <= human.agreement_high <= 1
        assert {judge.kind for judge in human.judges} == {"human", "llm"}
        assert {"t1", "t2"} <= {judge.judge_id for judge in human.judges}
        assert results["statistics"]["human_judging"] == human.model_dump(mode="json")

    def test_no_essay_text_or_link_token_is_in_the_services_logs(self, batch: JudgingBatch) -> None:
        logs = "\n".join(path.read_text(errors="replace") for path in batch.service_logs)
        tokens = [batch.token(judge.judge_id) for judge in TEACHERS]

        assert "cj_pairs_given_to_people" in logs  # the log is the one the batch ran with
        assert [e for e, text in ESSAYS.items() if _normalised(text)[:30] in logs] == []
        assert [token for token in tokens if token.split(".")[1][:16] in logs] == []
