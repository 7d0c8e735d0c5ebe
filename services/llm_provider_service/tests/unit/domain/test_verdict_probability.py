"""Reading P(essay A is better) from the verdict token's log-probabilities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common_core.events.llm import ComparisonWinner
from llm_provider_service.domain.answers import parse_comparison_answer
from llm_provider_service.domain.verdict_probability import (
    TokenAlternative,
    TokenLogprob,
    probability_essay_a_better,
)

A, B = ComparisonWinner.ESSAY_A, ComparisonWinner.ESSAY_B
ANSWER_A = '{"winner": "A", "justification": "Clearer.", "confidence": 4}'


def _certain(token: str) -> TokenLogprob:
    return TokenLogprob(token, 0.0, (TokenAlternative(token, 0.0),))


def _tokens(pieces: list[str], verdict: str, alternatives: dict[str, float]) -> list[TokenLogprob]:
    """The answer cut into `pieces`; at the piece `verdict`, the given alternatives (token:
    probability) and the chosen piece's own log-probability."""
    tokens = []
    for piece in pieces:
        if piece == verdict:
            top = tuple(TokenAlternative(t, math.log(p)) for t, p in alternatives.items())
            tokens.append(TokenLogprob(piece, math.log(alternatives.get(piece, 1e-6)), top))
        else:
            tokens.append(_certain(piece))
    return tokens


_TAIL = ' "Clearer.", "confidence": 4}'
_PIECES_A = ['{"', "winner", '":', ' "', "A", '",', ' "', "justification", '":', _TAIL]


class TestBothLettersListed:
    def test_the_letters_are_normalised_over_each_other(self) -> None:
        tokens = _tokens(_PIECES_A, "A", {"A": 0.6, "B": 0.3, " A": 0.05, "The": 0.05})
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.6 / 0.9)

    def test_a_verdict_for_b_still_gives_the_probability_of_a(self) -> None:
        text = ANSWER_A.replace('"A"', '"B"')
        pieces = [piece.replace("A", "B") if piece == "A" else piece for piece in _PIECES_A]
        tokens = _tokens(pieces, "B", {"B": 0.7, "A": 0.2, "Essay": 0.1})
        assert probability_essay_a_better(text, B, tokens) == pytest.approx(0.2 / 0.9)

    def test_a_token_that_also_writes_the_quotes_before_the_letter_is_read_past_them(
        self,
    ) -> None:
        pieces = ['{"', "winner", '":', ' "A', '",', ' "', "justification", '":', _TAIL]
        tokens = _tokens(pieces, ' "A', {' "A': 0.8, ' "B': 0.1, ' "': 0.1})
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.8 / 0.9)

    def test_tokens_writing_the_same_letter_add_up(self) -> None:
        pieces = ['{"', "winner", '":', ' "', 'A",', ' "', "justification", '":', _TAIL]
        tokens = _tokens(pieces, 'A",', {'A",': 0.5, "A": 0.2, "B": 0.3})
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.7)

    @given(st.floats(min_value=0.01, max_value=0.98), st.floats(min_value=0.0, max_value=1.0))
    def test_the_result_is_the_share_of_a_whatever_the_other_tokens_hold(
        self, letters: float, share_a: float
    ) -> None:
        p_a, p_b = letters * share_a, letters * (1 - share_a)
        alternatives = {"A": max(p_a, 1e-12), "B": max(p_b, 1e-12), "Essay": 1 - letters}
        tokens = _tokens(_PIECES_A, "A", alternatives)
        result = probability_essay_a_better(ANSWER_A, A, tokens)
        expected = alternatives["A"] / (alternatives["A"] + alternatives["B"])
        assert result == pytest.approx(expected, rel=1e-9, abs=1e-12)


class TestOtherTokens:
    @pytest.mark.parametrize("other", ["AB", " A", "Apple", "A_", "a", "Essay", '"'])
    def test_tokens_that_write_no_single_verdict_letter_do_not_count(self, other: str) -> None:
        tokens = _tokens(_PIECES_A, "A", {"A": 0.5, "B": 0.25, other: 0.25})
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.5 / 0.75)

    def test_openais_far_below_the_top_value_counts_as_nothing(self) -> None:
        top = (TokenAlternative("A", math.log(0.9)), TokenAlternative("B", -9999.0))
        tokens = [*_tokens(_PIECES_A, "", {})[:4], TokenLogprob("A", math.log(0.9), top)]
        tokens += [_certain(piece) for piece in _PIECES_A[5:]]
        assert probability_essay_a_better(ANSWER_A, A, tokens) == 1.0


class TestOneLetterOnly:
    def test_the_missing_letter_gets_at_most_the_least_likely_listed_token(self) -> None:
        tokens = _tokens(_PIECES_A, "A", {"A": 0.9, " A": 0.004, "The": 0.002})
        # 1 - listed = 0.094, but B is not in the top list, so it is below 0.002.
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.9 / 0.902)

    def test_without_a_top_list_the_missing_letter_gets_what_the_chosen_one_leaves(
        self,
    ) -> None:
        tokens = [_certain(piece) for piece in _PIECES_A]
        tokens[4] = TokenLogprob("A", math.log(0.8))
        assert probability_essay_a_better(ANSWER_A, A, tokens) == pytest.approx(0.8)

    def test_a_certain_judge_gives_one(self) -> None:
        tokens = [_certain(piece) for piece in _PIECES_A]
        assert probability_essay_a_better(ANSWER_A, A, tokens) == 1.0


class TestNoPosition:
    def test_no_log_probabilities_give_none(self) -> None:
        assert probability_essay_a_better(ANSWER_A, A, None) is None
        assert probability_essay_a_better(ANSWER_A, A, []) is None
        assert probability_essay_a_better(None, A, [_certain("x")]) is None

    def test_an_answer_in_the_older_essay_a_form_gives_none(self) -> None:
        text = '{"winner": "essay_a", "justification": "x", "confidence": 3}'
        pieces = ['{"', "winner", '":', ' "', "essay", "_a", '",', ' "x", "confidence": 3}']
        assert probability_essay_a_better(text, A, [_certain(p) for p in pieces]) is None

    def test_an_answer_whose_verdict_is_not_first_gives_none(self) -> None:
        text = '{"justification": "x", "winner": "A", "confidence": 3}'
        pieces = ['{"', "justification", '": "x", "', "winner", '": "', "A", '", "confidence": 3}']
        tokens = _tokens(pieces, "A", {"A": 0.6, "B": 0.4})
        assert probability_essay_a_better(text, A, tokens) is None

    def test_tokens_that_do_not_spell_the_answer_give_none(self) -> None:
        pieces = ['{"', "winner", '":', '  "', "A", '",', ' "', "justification", '":', ' "x"}']
        tokens = _tokens(pieces, "A", {"A": 0.6, "B": 0.4})
        assert probability_essay_a_better(ANSWER_A, A, tokens) is None

    def test_tokens_that_end_before_the_verdict_give_none(self) -> None:
        tokens = _tokens(_PIECES_A[:3], "A", {})
        assert probability_essay_a_better(ANSWER_A, A, tokens) is None

    def test_a_second_winner_key_that_changes_the_parsed_verdict_gives_none(self) -> None:
        text = '{"winner": "A", "justification": "x", "confidence": 3, "winner": "B"}'
        assert parse_comparison_answer(text).winner is B
        pieces = ['{"', "winner", '":', ' "', "A", '", "justification": "x", "confidence": 3, ']
        pieces.append('"winner": "B"}')
        tokens = _tokens(pieces, "A", {"A": 0.6, "B": 0.4})
        assert probability_essay_a_better(text, B, tokens) is None

    def test_a_position_where_neither_letter_is_listed_gives_none(self) -> None:
        top = (TokenAlternative("Essay", math.log(0.5)), TokenAlternative(" A", math.log(0.4)))
        tokens = [_certain(piece) for piece in _PIECES_A]
        tokens[4] = TokenLogprob("A", -9999.0, top)
        assert probability_essay_a_better(ANSWER_A, A, tokens) is None

    def test_a_code_fenced_answer_is_read_past_the_fence(self) -> None:
        text = "```json\n" + ANSWER_A + "\n```"
        tokens = _tokens(["```", "json", "\n", *_PIECES_A, "\n```"], "A", {"A": 0.3, "B": 0.6})
        assert probability_essay_a_better(text, A, tokens) == pytest.approx(1 / 3)
