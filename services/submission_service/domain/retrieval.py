"""What the rag stage searches the reference passages for (pure)."""

from __future__ import annotations

import re

# Words only (letters, no digits or punctuation), so every term is a valid tsquery operand.
_TERM = re.compile(r"[^\W\d_]{3,}")
MAX_SEARCH_TERMS = 256


def search_terms(*texts: str, limit: int = MAX_SEARCH_TERMS) -> list[str]:
    """Distinct lower-case words of the texts (three letters or more), first ones first; the
    full-text search stems them and drops stop words, and matches a passage having any of them."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _TERM.findall(text):
            seen.setdefault(word.lower(), None)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)
