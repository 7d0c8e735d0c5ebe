"""The digest-keyed memo the offline judge measures texts through."""

from __future__ import annotations

from llm_provider_service.domain.heuristic_judge import text_features
from llm_provider_service.domain.text_memo import TextMemo, text_digest


class TestTextMemo:
    def test_a_text_is_computed_once(self) -> None:
        memo: TextMemo[int] = TextMemo()
        calls: list[str] = []

        def compute() -> int:
            calls.append("x")
            return len(calls)

        assert memo.get(("essay",), compute) == 1
        assert memo.get(("essay",), compute) == 1
        assert calls == ["x"]

    def test_parts_are_not_confused_by_where_they_split(self) -> None:
        assert text_digest("ab", "c") != text_digest("a", "bc")

    def test_the_least_recently_used_result_goes_first(self) -> None:
        memo: TextMemo[str] = TextMemo(entries=2)
        memo.get(("a",), lambda: "a1")
        memo.get(("b",), lambda: "b1")
        memo.get(("a",), lambda: "a2")  # a is used again, so b is the oldest
        memo.get(("c",), lambda: "c1")
        assert memo.get(("a",), lambda: "a3") == "a1"
        assert memo.get(("b",), lambda: "b2") == "b2"

    def test_the_memo_holds_digests_not_texts(self) -> None:
        memo: TextMemo[int] = TextMemo()
        memo.get(("a private essay text",), lambda: 1)
        assert all(isinstance(key, bytes) and len(key) == 20 for key in memo._results)


class TestRememberedFeatures:
    def test_the_same_text_and_question_give_the_same_features(self) -> None:
        text = "Because phones distract us, however they help; in conclusion, limits work."
        assert text_features(text, "Discuss phones.") is text_features(text, "Discuss phones.")

    def test_another_question_measures_again(self) -> None:
        text = "Because phones distract us, however they help; in conclusion, limits work."
        assert text_features(text, "Discuss phones.") != text_features(text, "Discuss trains.")
