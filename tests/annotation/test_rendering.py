from annotation.rendering import render_markdown


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
