"""A simulated teacher for the demo: opens its private judging link as a person would, reads the
two essays on the page and picks the better one by a noisy reading of the sample's intended
order (a real teacher's judgement, mistaken now and then), until the page says it is done."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx

from huleedu_cli.errors import ClientError

# Texts on the page, by the ids of the elements that hold them.
_TEXT_IDS = ("essay-a-text", "essay-b-text")
_END_IDS = ("done-message", "closed-message")
WAITING_ID = "waiting-message"


class JudgingPage(HTMLParser):
    """What a judge sees on a page: the pair's id, the two essays' texts, or an end state."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pair_id: str | None = None
        self.texts: dict[str, str] = {}
        self.ids: set[str] = set()
        self._reading: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        element_id = values.get("id")
        if element_id:
            self.ids.add(element_id)
        if tag == "input" and values.get("name") == "pair_id" and self.pair_id is None:
            self.pair_id = values.get("value")
        if self._reading is not None:
            self._depth += 1
        elif element_id in _TEXT_IDS:
            self._reading, self._depth = element_id, 1
            self.texts[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._reading is not None:
            self._depth -= 1
            if self._depth == 0:
                self._reading = None

    def handle_data(self, data: str) -> None:
        if self._reading is not None:
            self.texts[self._reading] += data

    @property
    def finished(self) -> bool:
        """The judge has nothing left to do here (all judged, deadline passed, batch over)."""
        return any(end in self.ids for end in _END_IDS)


@dataclass
class TeacherReport:
    """What the simulated teacher did."""

    judged: int = 0
    agreed_with_intended_order: int = 0
    by_coin: int = 0
    """Pairs the teacher could not tell apart (an essay it did not know, or a tie)."""


def judge_as_teacher(
    link: str,
    quality: Callable[[str], float | None],
    *,
    mistake_rate: float = 0.15,
    seed: int = 0,
    timeout: float = 600.0,
    poll_seconds: float = 0.5,
) -> TeacherReport:
    """Judge every pair given to this link's judge: the essay of higher `quality` (by its text;
    None: unknown, a coin), except on `mistake_rate` of the pairs; returns when the page says
    done (or the batch is over), or raises after `timeout` seconds."""
    rng = random.Random(seed)
    report = TeacherReport()
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30.0, follow_redirects=False) as http:
        while time.monotonic() < deadline:
            page = _read_page(http, link)
            if page.finished:
                return report
            if page.pair_id is None or len(page.texts) < len(_TEXT_IDS):
                time.sleep(poll_seconds)  # no pair given yet: the AI has not answered enough
                continue
            first, second = (quality(page.texts[i].strip()) for i in _TEXT_IDS)
            if first is None or second is None or first == second:
                choice = rng.choice("AB")
                report.by_coin += 1
            else:
                better = "A" if first > second else "B"
                choice = better if rng.random() >= mistake_rate else ("B" if better == "A" else "A")
                report.agreed_with_intended_order += choice == better
            answer = http.post(f"{link}/verdicts", data={"pair_id": page.pair_id, "winner": choice})
            if answer.status_code != httpx.codes.SEE_OTHER:
                raise ClientError(f"the judging page refused a verdict ({answer.status_code})")
            report.judged += 1
    raise ClientError(f"the simulated teacher was not done within {timeout:.0f}s")


def _read_page(http: httpx.Client, link: str) -> JudgingPage:
    response = http.get(link)
    if response.status_code != httpx.codes.OK:
        raise ClientError(f"the judging page answered {response.status_code}")
    page = JudgingPage()
    page.feed(response.text)
    return page


def quality_by_text(
    texts: Mapping[str, str], intended_rank: Mapping[str, int]
) -> Callable[[str], float | None]:
    """The teacher's sense of quality: minus the intended rank of the essay with this text
    (rank 1 is the best), None for a text it does not know."""
    by_text = {text.strip(): -float(intended_rank[essay_id]) for essay_id, text in texts.items()
               if essay_id in intended_rank}  # fmt: skip
    return by_text.get
