"""Markdown to safe HTML for responses and guidelines.

Model output is untrusted: it is rendered as GitHub-flavoured Markdown by cmark-gfm (fenced code,
tables, every newline a line break) and then sanitised with nh3 (Ammonia), which drops scripts,
event handlers and javascript: URLs. Raw HTML is passed from the one to the other, and nh3 alone
decides what of it stays.
"""

import nh3
from cmarkgfm import cmark

# HARDBREAKS: a newline in a response is a line break, as annotators read it in the plain text.
# UNSAFE only means "keep raw HTML": nh3 below is what makes the output safe.
_OPTIONS = (
    cmark.Options.CMARK_OPT_HARDBREAKS
    | cmark.Options.CMARK_OPT_UNSAFE
    | cmark.Options.CMARK_OPT_VALIDATE_UTF8
)
_EXTENSIONS = ["table"]

# cmark-gfm registers its extensions on first use behind a plain flag, and two threads doing that
# at once abort the process (a second registration of the table's node flag calls abort()).
# Importing is serialised: register here, before gunicorn's threads render anything.
cmark.core_extensions_ensure_registered()

_ALLOWED_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "span",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to HTML that is safe to insert into a page.

    >>> render_markdown("**hi** <script>alert(1)</script>")
    '<p><strong>hi</strong> </p>\\n'
    """
    try:
        html = cmark.markdown_to_html_with_extensions(text, options=_OPTIONS, extensions=_EXTENSIONS)
    except UnicodeEncodeError:  # a lone surrogate: the C library takes UTF-8 only
        return render_markdown(text.encode("utf-8", "replace").decode("utf-8"))
    return sanitise(html)


def sanitise(html: str) -> str:
    """Keep only the tags and attributes Markdown output needs; drop scripts and handlers."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
