import subprocess
import sys
from pathlib import Path

from annotation.rendering import render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_it_keeps_code_blocks_with_their_language():
    html = render_markdown("```python\nprint('hi')\n```")
    assert '<pre><code class="language-python">' in html
    assert "print(&#x27;hi&#x27;)" in html or "print('hi')" in html


def test_it_strips_scripts_and_event_handlers():
    html = render_markdown('<script>alert(1)</script><img src=x onerror="alert(2)"><b onclick="x()">b</b>')
    assert "<script" not in html
    assert "alert(1)" not in html
    assert "onerror" not in html
    assert "onclick" not in html


def test_it_drops_javascript_links():
    html = render_markdown("[click](javascript:alert(1))")
    assert "javascript:" not in html


def test_it_renders_tables_with_their_alignment():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert '<th align="left">a</th>' in html
    assert '<td align="right">2</td>' in html


def test_a_newline_is_a_line_break():
    assert render_markdown("line\nbreak") == "<p>line<br>\nbreak</p>\n"


def test_lists_render_as_models_write_them():
    # GitHub-flavoured: a list right under a line of text, nested by two spaces.
    html = render_markdown("Steps:\n1. one\n2. two\n   - detail")
    assert html.count("<li>") == 3
    assert "<ol>" in html and "<ul>" in html


def test_it_survives_a_lone_surrogate():
    assert "<strong>x</strong>" in render_markdown("\ud800 **x**")


def test_a_fresh_process_renders_from_many_threads_at_once():
    # cmark-gfm's first use registers its extensions; done by two threads together it aborts.
    script = (
        "import threading; from annotation.rendering import render_markdown\n"
        "barrier = threading.Barrier(16)\n"
        "def go():\n"
        "    barrier.wait(); render_markdown('| a |\\n|---|\\n| 1 |')\n"
        "threads = [threading.Thread(target=go) for _ in range(16)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
