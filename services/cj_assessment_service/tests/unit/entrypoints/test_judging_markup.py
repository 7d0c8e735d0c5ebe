"""The prompt on the judging page: Markdown rendered, raw HTML and unsafe links never live."""

from __future__ import annotations

from cj_assessment_service.entrypoints.judging_markup import prompt_html


def test_markdown_is_rendered_with_headings_below_the_pages_own() -> None:
    html = prompt_html("# Essay prompt\n\n**Should schools ban phones?**\n\nWrite\nan essay.")
    assert html == (
        "<h3>Essay prompt</h3>\n<p><strong>Should schools ban phones?</strong></p>\n"
        "<p>Write\nan essay.</p>\n"
    )
    assert "<h6>" in prompt_html("###### deep\n\n####### deeper")


def test_raw_html_is_text_and_a_javascript_link_is_no_link() -> None:
    html = prompt_html('<script>alert(1)</script> <img src=x onerror="alert(2)">')
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "<a " not in prompt_html("[click](javascript:alert(1))")
    assert '<a href="https://example.org/task">' in prompt_html("[task](https://example.org/task)")
