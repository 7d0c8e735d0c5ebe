"""A bounded memo of results computed from texts, keyed by a digest of the texts.

An essay of a CJ batch is in about twenty comparisons, so the offline judge would measure the
same text twenty times. Keyed by a BLAKE2 digest (not the text itself), the memo holds no essay
text and its size does not depend on the texts' length.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_ENTRIES = 8192


def text_digest(*parts: str) -> bytes:
    """A digest of the parts that no other sequence of parts shares."""
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        encoded = part.encode("utf-8", errors="surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.digest()


class TextMemo(Generic[T]):
    """The last `entries` results by the digest of their inputs (least recently used go)."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._results: OrderedDict[bytes, T] = OrderedDict()

    def get(self, parts: tuple[str, ...], compute: Callable[[], T]) -> T:
        """The result remembered for `parts`, else `compute()` (remembered)."""
        key = text_digest(*parts)
        found = self._results.get(key)
        if found is not None:
            self._results.move_to_end(key)
            return found
        result = compute()
        self._results[key] = result
        if len(self._results) > self._entries:
            self._results.popitem(last=False)
        return result
