"""Texts that game a feature-based judge, built from the sample essays in samples/: the prompt
pasted verbatim, a good essay with its words shuffled, one paragraph pasted again and again, a
keyword list and an off-topic essay (for the tests of the heuristic judge)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from llm_provider_service.domain.heuristic_judge import content_stems, words

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
PROMPT = (SAMPLES / "prompt.md").read_text(encoding="utf-8")
RUBRIC = (SAMPLES / "rubric.md").read_text(encoding="utf-8")
INTENDED_RANK = {
    row["essay_id"]: int(row["intended_rank"])
    for row in csv.DictReader((SAMPLES / "intended_order.csv").open(encoding="utf-8"))
}
ESSAYS = {
    essay_id: (SAMPLES / "essays" / f"{essay_id}.txt").read_text(encoding="utf-8")
    for essay_id in INTENDED_RANK
}

GOOD_ID = "s07"  # intended rank 1, grade A
HONEST_WEAK_ID = "s03"  # grade E: on topic, an opinion without argument, many errors
WEAK_IDS = ("s03", "s14", "s21", "s08")  # the four E-grade essays, all on topic

OFF_TOPIC = (
    "Volcanoes form where molten rock from deep inside the Earth finds a way to the surface. "
    "Most of them sit along the edges of tectonic plates, for example around the Pacific "
    "Ocean, where one plate slides beneath another and melts as it sinks.\n\n"
    "Not every eruption looks the same. Some volcanoes, such as those in Hawaii, release "
    "runny lava that flows slowly downhill, while others explode violently because gas is "
    "trapped in thick, sticky magma. The eruption of Mount Vesuvius in the year 79 buried "
    "the Roman towns of Pompeii and Herculaneum under metres of ash.\n\n"
    "However, volcanoes are not only destructive. Volcanic soil is extremely fertile, so "
    "farmers have always settled on their slopes, and in Iceland the heat underground warms "
    "homes and produces electricity. In conclusion, volcanoes are dangerous neighbours, but "
    "people who understand them can live safely beside them and even benefit from them."
)


# Course reference material for the sample prompt (passage id, text), as a definition would ship
# it for retrieval-grounded (rag) rubric scoring: key points and a short exemplar.
REFERENCE_PASSAGES = (
    (
        "kp-distraction",
        "Key point: phones distract students in lessons. Notifications, games and social media "
        "pull attention away from the teacher, and studies of phone bans report better "
        "concentration and test results, especially for weaker students.",
    ),
    (
        "kp-social",
        "Key point: phones change breaks and social life. Without phones students talk and play "
        "together more; with them, cyberbullying and pressure from social media can follow "
        "students into school.",
    ),
    (
        "kp-tools",
        "Key point: phones are also useful tools. Students use them for research, dictionaries, "
        "calendars and contacting parents in an emergency, and schools can teach responsible "
        "use instead of banning them.",
    ),
    (
        "exemplar-position",
        "Exemplar: a strong answer takes a clear position, for example a ban during lessons "
        "with exceptions for teaching and emergencies, supports it with reasons and examples, "
        "answers the opposing view and ends with a conclusion.",
    ),
)


def shuffled(text: str, seed: int) -> str:
    """The text's whitespace-separated tokens in a random (seeded) order."""
    tokens = text.split()
    random.Random(seed).shuffle(tokens)
    return " ".join(tokens)


def padded(text: str, copies: int) -> str:
    """The text's second paragraph pasted `copies` times."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join([paragraphs[1]] * copies)


def keyword_list(*sources: str) -> str:
    """The content words of the sources, once each, comma-separated: no sentences."""
    seen: dict[str, None] = {}
    for word in words(" ".join(sources)):
        if word in content_stems(word):
            seen.setdefault(word, None)
    return ", ".join(seen)


def tricks() -> dict[str, str]:
    """Every trick by name, built from the good sample essay, the prompt and the rubric."""
    good = ESSAYS[GOOD_ID]
    keywords = keyword_list(PROMPT, RUBRIC)
    return {
        "prompt pasted verbatim": PROMPT,
        "prompt and rubric pasted": PROMPT + "\n\n" + RUBRIC,
        **{f"good essay shuffled (seed {seed})": shuffled(good, seed) for seed in range(5)},
        "good paragraph pasted twice": padded(good, 2),
        "good paragraph pasted six times": padded(good, 6),
        "keyword list": keywords,
        "keywords without punctuation": keywords.replace(",", ""),
        "off-topic essay": OFF_TOPIC,
    }
