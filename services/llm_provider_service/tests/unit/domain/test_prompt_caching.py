"""Where the cacheable prefix of a prompt ends, and its cache key."""

from __future__ import annotations

from llm_provider_service.domain.prompt_caching import (
    CacheTerms,
    plan_prompt_cache,
    recurring_breakpoint_pays,
)
from llm_provider_service.domain.prompts import (
    RenderedPrompt,
    render_comparison_prompt,
    render_rubric_prompt,
)

LONG_RUBRIC = "Weigh the evidence, the structure and the language of each essay. " * 120
LONG_ESSAY = "The argument is developed with evidence from the source text. " * 80
ANTHROPIC = CacheTerms(1024, write_ratio=1.25, read_ratio=0.1)


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
        plan = plan_prompt_cache(prompt, terms=ANTHROPIC)
        assert plan.breakpoints[0] == prompt.static_chars
        assert plan.prefix_tokens >= 1024

    def test_a_prefix_below_the_model_minimum_gets_no_breakpoint(self) -> None:
        prompt = _comparison("A.", "B.", LONG_RUBRIC)
        plan = plan_prompt_cache(prompt, terms=CacheTerms(4096))
        assert plan.breakpoints == ()

    def test_the_key_follows_the_static_prefix_not_the_essays(self) -> None:
        one = plan_prompt_cache(_comparison("A.", "B."), terms=ANTHROPIC)
        two = plan_prompt_cache(_comparison("C.", "D."), terms=ANTHROPIC)
        other_rubric = plan_prompt_cache(_comparison("A.", "B.", LONG_RUBRIC), terms=ANTHROPIC)
        assert one.key == two.key
        assert one.key != other_rubric.key


class TestEssayABreakpoint:
    def test_a_long_essay_a_gets_a_second_breakpoint_after_its_fenced_text(self) -> None:
        prompt = _comparison(LONG_ESSAY, "B.", LONG_RUBRIC)
        plan = plan_prompt_cache(prompt, terms=ANTHROPIC)
        assert plan.breakpoints == (prompt.static_chars, prompt.recurring_chars)
        essay_a_part = prompt.user[prompt.static_chars : prompt.recurring_chars]
        assert LONG_ESSAY in essay_a_part
        assert "B." not in prompt.user[prompt.recurring_chars - 4 : prompt.recurring_chars]

    def test_the_essay_a_prefix_is_the_same_whatever_essay_b_is(self) -> None:
        one = _comparison(LONG_ESSAY, "Essay two.")
        other = _comparison(LONG_ESSAY, "Essay three, quite different.")
        assert one.user[: one.recurring_chars] == other.user[: other.recurring_chars]

    def test_short_instructions_and_essay_a_reaching_the_minimum_get_only_the_essay_breakpoint(
        self,
    ) -> None:
        prompt = _comparison(LONG_ESSAY, "B.")
        plan = plan_prompt_cache(prompt, terms=ANTHROPIC)
        assert plan.breakpoints == (prompt.recurring_chars,)

    def test_no_breakpoint_when_even_the_prefix_through_essay_a_is_too_short(self) -> None:
        prompt = _comparison("A short essay.", "B.")
        plan = plan_prompt_cache(prompt, terms=ANTHROPIC)
        assert plan.breakpoints == ()

    def test_no_essay_breakpoint_when_cache_writes_cost_too_much_to_pay_back(self) -> None:
        prompt = _comparison(LONG_ESSAY, "B.", LONG_RUBRIC)
        dear_writes = CacheTerms(1024, write_ratio=2.0, read_ratio=0.1)
        plan = plan_prompt_cache(prompt, terms=dear_writes)
        assert plan.breakpoints == (prompt.static_chars,)

    def test_a_rubric_prompt_has_no_recurring_part(self) -> None:
        prompt = render_rubric_prompt(
            answer=LONG_ESSAY, question="Why?", rubric={"depth": LONG_RUBRIC}, language="en"
        )
        plan = plan_prompt_cache(prompt, terms=ANTHROPIC)
        assert plan.breakpoints == (prompt.static_chars,)


class TestBreakEven:
    def test_anthropic_prices_pay_back_above_about_22_percent_hits(self) -> None:
        assert recurring_breakpoint_pays(ANTHROPIC, 0.25)
        assert not recurring_breakpoint_pays(ANTHROPIC, 0.2)

    def test_a_breakpoint_that_is_never_read_back_never_pays(self) -> None:
        assert not recurring_breakpoint_pays(ANTHROPIC, 0.0)
