"""Where the cacheable prefix of a prompt ends, and its cache key."""

from __future__ import annotations

from llm_provider_service.domain.prompt_caching import plan_prompt_cache
from llm_provider_service.domain.prompts import (
    RenderedPrompt,
    render_comparison_prompt,
    render_rubric_prompt,
)

LONG_RUBRIC = "Weigh the evidence, the structure and the language of each essay. " * 120


def _comparison(essay_a: str, essay_b: str, rubric: str | None = None) -> RenderedPrompt:
    return render_comparison_prompt(
        essay_a=essay_a,
        essay_b=essay_b,
        instructions="Discuss car-free city centres.",
        judge_rubric=rubric,
        language="en",
    )


class TestStaticPrefix:
    def test_the_static_part_comes_first_and_the_essays_last(self) -> None:
        prompt = _comparison("First essay text.", "Second essay text.", LONG_RUBRIC)
        head = prompt.user[: prompt.static_chars]
        assert "Discuss car-free city centres." in head
        assert LONG_RUBRIC.strip() in head
        assert "First essay text." not in head
        assert "First essay text." in prompt.user[prompt.static_chars :]

    def test_every_pair_with_the_same_instructions_shares_the_static_prefix(self) -> None:
        one = _comparison("Essay one.", "Essay two.")
        other = _comparison("Essay three.", "Essay four.")
        assert one.static_prefix == other.static_prefix

    def test_the_rubric_prompt_puts_the_answer_after_its_static_part(self) -> None:
        prompt = render_rubric_prompt(
            answer="My answer.", question="Why?", rubric={"depth": "x"}, language="en"
        )
        assert "My answer." not in prompt.user[: prompt.static_chars]
        assert "Why?" in prompt.user[: prompt.static_chars]


class TestCachePlan:
    def test_a_long_static_prefix_gets_a_breakpoint_at_its_end(self) -> None:
        prompt = _comparison("A.", "B.", LONG_RUBRIC)
        plan = plan_prompt_cache(prompt, min_cacheable_tokens=1024)
        assert plan.breakpoint_chars == prompt.static_chars
        assert plan.prefix_tokens >= 1024

    def test_a_prefix_below_the_model_minimum_gets_no_breakpoint(self) -> None:
        prompt = _comparison("A.", "B.", LONG_RUBRIC)
        plan = plan_prompt_cache(prompt, min_cacheable_tokens=4096)
        assert plan.breakpoint_chars == 0

    def test_the_key_follows_the_static_prefix_not_the_essays(self) -> None:
        one = plan_prompt_cache(_comparison("A.", "B."), min_cacheable_tokens=1024)
        two = plan_prompt_cache(_comparison("C.", "D."), min_cacheable_tokens=1024)
        other_rubric = plan_prompt_cache(
            _comparison("A.", "B.", LONG_RUBRIC), min_cacheable_tokens=1024
        )
        assert one.key == two.key
        assert one.key != other_rubric.key
