import markdown

from annotation.rendering import _EXTENSIONS, render_markdown, sanitise


def test_it_keeps_code_blocks():
    html = render_markdown("```python\nprint('hi')\n```")
    assert "<pre><code" in html
    assert "print(&#x27;hi&#x27;)" in html or "print('hi')" in html


def test_it_strips_scripts_and_event_handlers():
    html = render_markdown('<script>alert(1)</script><img src=x onerror="alert(2)"><b onclick="x()">b</b>')
    assert "<script" not in html
    assert "onerror" not in html
    assert "onclick" not in html


def test_it_drops_javascript_links():
    html = render_markdown("[click](javascript:alert(1))")
    assert "javascript:" not in html


def test_a_reused_converter_renders_each_text_as_a_fresh_one_would():
    texts = [
        "```python\nprint('a')\n```",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "1. one\n2. two\n\nline\nbreak",
        "<div>raw html</div> and `code`",
        "```python\nprint('a')\n```",
    ]
    for text in texts:
        fresh = markdown.markdown(text, extensions=_EXTENSIONS, output_format="html")
        assert render_markdown(text) == sanitise(fresh)
