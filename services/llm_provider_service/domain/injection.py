"""Spotting essays that address the judge instead of the reader (prompt-injection attempts).

The check is a transparent pattern list: each pattern needs both an instruction-like verb and a
target that only makes sense when talking to an AI grader, so ordinary essays about rules,
courts or artificial intelligence are not flagged.
"""

from __future__ import annotations

import re

from llm_provider_service.domain.text_memo import TextMemo

_JUDGE = (
    r"(?:ai|a\.i\.|assistant|language model|llm|model|chatbot|judge|grader|evaluator|marker"
    r"|examiner|reviewer|system)"
)
_MY_TEXT = (
    r"(?:this|my|the (?:following|present|current)) (?:essay|answer|text|response|submission|work)"
)

INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "override_instructions",
            r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(?:previous|prior|"
            r"above|earlier|preceding|all|any|your|system|original)\b[^.!?\n]{0,20}\b(?:instructions?"
            r"|prompts?|directions|rules|guidelines|rubric|criteria)\b",
        ),
        (
            "new_instructions",
            r"\b(?:new|updated|real|actual|revised) (?:system )?instructions?\s*:",
        ),
        (
            "address_the_judge",
            rf"\b(?:dear|attention|note to (?:the )?|hey|hello)\s*{_JUDGE}\b[,:!]",
        ),
        ("you_are_the_judge", rf"\byou are (?:now |an? |the )*{_JUDGE}\b"),
        (
            "demand_verdict",
            rf"\b(?:choose|pick|select|prefer|declare|rank|rate|score|grade|mark)\b[^.!?\n]{{0,20}}"
            rf"\b{_MY_TEXT}\b[^.!?\n]{{0,40}}\b(?:winner|better|best|higher|first|top|"
            r"highest|as the winner|over the other)",
        ),
        (
            "demand_score",
            r"\b(?:give|award|assign|grant)\b[^.!?\n]{0,30}\b(?:this|my|me|the author)\b"
            r"[^.!?\n]{0,30}\b(?:highest|top|maximum|max|full|perfect|best|5/5|10/10|an a\+?)\b"
            r"[^.!?\n]{0,15}\b(?:score|scores|mark|marks|grade|rating|confidence|points)\b",
        ),
        (
            "verdict_literal",
            r"\"?winner\"?\s*[:=]\s*\"?essay_[ab]\b|\bessay_[ab]\b|\"winner\"\s*:\s*\"[ab]\"",
        ),
        (
            "json_answer",
            r"\b(?:respond|reply|answer|output)\b[^.!?\n]{0,20}\b(?:only )?(?:with|in) json\b",
        ),
        (
            "role_markup",
            r"<\|?/?(?:system|assistant|im_start|im_end|instructions?|essay)\|?>|\[/?(?:inst|system)\]",
        ),
        ("role_prefix", r"(?:^|\n)\s*(?:system|assistant|developer)\s*:\s"),
        (
            "other_essay",
            r"\b(?:the other|essay [ab]\b|the second|the first) (?:essay|answer|text|response)"
            r"[^.!?\n]{0,40}\b(?:worse|weaker|should lose|is bad|plagiari[sz]ed)",
        ),
    )
)


_SIGNALS: TextMemo[tuple[str, ...]] = TextMemo()


def injection_signals(text: str) -> list[str]:
    """Names of the injection patterns a text matches (empty for an ordinary essay);
    remembered, as an essay is in many comparisons."""
    found = _SIGNALS.get(
        (text,),
        lambda: tuple(name for name, pattern in INJECTION_PATTERNS if pattern.search(text)),
    )
    return list(found)


def injection_suspected(*texts: str) -> bool:
    """True when any text contains instruction-like text aimed at the judge."""
    return any(injection_signals(text) for text in texts)
