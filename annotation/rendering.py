"""Markdown to safe HTML for responses and guidelines.

Model output is untrusted: it is rendered with Python-Markdown (fenced code kept) and then
sanitised with nh3 (Ammonia), which drops scripts, event handlers and javascript: URLs.
"""

import threading

import markdown
import nh3

_EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]
_ALLOWED_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "span",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}

# Building a Markdown instance (its parsers and extensions) cost twice as much CPU as converting a
# response with it (py-spy on bench/annotation_load.py), so each thread keeps one and resets it.
# Instances are not thread-safe, hence one per thread.
_local = threading.local()


def _converter() -> markdown.Markdown:
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = markdown.Markdown(extensions=_EXTENSIONS, output_format="html")
    return converter


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to HTML that is safe to insert into a page.

    >>> render_markdown("**hi** <script>alert(1)</script>")
    '<p><strong>hi</strong> </p>'
    """
    return sanitise(_converter().reset().convert(text))


def sanitise(html: str) -> str:
    """Keep only the tags and attributes Markdown output needs; drop scripts and handlers."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
