"""The batch's prompt on the judging page: Markdown (as organisers write it, e.g. the sample's
prompt.md) rendered to HTML, with raw HTML left as text and unsafe links refused by the parser,
and its headings moved below the page's own (h1 the page, h2 "The task the essays answer")."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

# CommonMark with raw HTML off: a prompt's `<script>` is shown as text, never run.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
# The page's headings are h1 and h2: a prompt's "#" becomes h3, "##" h4, and so on (h6 at most).
_FIRST_PROMPT_HEADING = 3


def prompt_html(prompt: str) -> Markup:
    """The prompt as safe HTML for the judging page."""
    tokens = _MARKDOWN.parse(prompt)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = int(token.tag[1:]) + _FIRST_PROMPT_HEADING - 1
            token.tag = f"h{min(level, 6)}"
    return Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))  # noqa: S704 - escaped by markdown-it (html off)
