"""The simulated teacher reads the judging page as a person sees it."""

from __future__ import annotations

from huleedu_cli.simulated_teacher import JudgingPage, quality_by_text

PAIR_PAGE = """<!doctype html><html lang="en"><body><main id="judging">
<form id="verdict-form" method="post" action="/judge/t/verdicts">
<input type="hidden" name="pair_id" value="8c1e">
<section id="essay-a"><h2>Essay A</h2>
<div class="essay-text" id="essay-a-text">First &amp; <em>best</em>
essay</div><button id="choose-a">A</button></section>
<section id="essay-b"><h2>Essay B</h2>
<div class="essay-text" id="essay-b-text">Second</div></section>
</form></main></body></html>"""


def _read(html: str) -> JudgingPage:
    page = JudgingPage()
    page.feed(html)
    return page


def test_a_pair_page_gives_the_pair_id_and_both_texts_with_their_markup_as_text() -> None:
    page = _read(PAIR_PAGE)
    assert page.pair_id == "8c1e"
    assert page.texts == {"essay-a-text": "First & best\nessay", "essay-b-text": "Second"}
    assert not page.finished


def test_the_done_and_closed_pages_end_the_teachers_work() -> None:
    assert _read('<p id="done-message">All judged</p>').finished
    assert _read('<p id="closed-message">Deadline passed</p>').finished
    assert not _read('<p id="waiting-message">Come back later</p>').finished


def test_the_teachers_sense_of_quality_follows_the_intended_rank() -> None:
    quality = quality_by_text({"s1": " best text ", "s2": "worst text"}, {"s1": 1, "s2": 9})
    assert quality("best text") == -1.0
    assert quality("worst text") == -9.0
    assert quality("unknown") is None
