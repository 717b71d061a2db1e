"""Every response carries a strict Content-Security-Policy, and no template needs an exception to it.

The policy allows scripts and styles from our own files only, so an inline ``<script>``, an
``onclick=`` handler, a ``style=`` attribute or a ``<style>`` element in a template would be
refused by the browser. The scan below fails when one comes back; the browser tests listen for the
violations themselves (tests/browser/test_csp_pages.py).
"""

import re
from pathlib import Path

import pytest
from csp.constants import NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory

from alignweb.content_security import CSPMiddleware
from tests.factories import ComparisonFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "Content-Security-Policy"

EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def directives(response) -> dict[str, list[str]]:
    header = response.get(HEADER)
    assert header, "the response has no Content-Security-Policy"
    return {name: values for name, *values in (part.split() for part in header.split(";"))}


# --- What the browser may not run: inline code and inline looks. ------------------------------

# A <script> element with no src (data blocks of type application/json are not code and are allowed).
INLINE_SCRIPT = re.compile(
    r"<script\b(?![^>]*\bsrc\s*=)(?![^>]*\btype\s*=\s*[\"']application/json)[^>]*>", re.I
)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
JAVASCRIPT_URL = re.compile(r"""\b(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
PATTERNS = {
    "inline <script>": INLINE_SCRIPT,
    "event-handler attribute": EVENT_HANDLER,
    "style= attribute": STYLE_ATTRIBUTE,
    "<style> element": STYLE_ELEMENT,
    "javascript: URL": JAVASCRIPT_URL,
}


def inline_offences(html: str) -> list[str]:
    return [
        f"{what}: {match.group(0)[:80]!r}"
        for what, pattern in PATTERNS.items()
        for match in pattern.finditer(html)
    ]


@pytest.mark.parametrize(
    ("html", "what"),
    [
        ("<script>alert(1)</script>", "inline <script>"),
        ('<script type="module">import "x"</script>', "inline <script>"),
        ('<button type="button" onclick="go()">Go</button>', "event-handler attribute"),
        ("<body onload='start()'>", "event-handler attribute"),
        ('<div class="x" style="overflow-x: auto">', "style= attribute"),
        ("<style>body { margin: 0 }</style>", "<style> element"),
        ('<a href="javascript:void(0)">x</a>', "javascript: URL"),
    ],
)
def test_the_scan_catches_each_kind_of_inline_code_or_style(html, what):
    assert any(offence.startswith(what) for offence in inline_offences(html))


@pytest.mark.parametrize(
    "html",
    [
        '<script src="/static/js/annotate.js" defer></script>',
        '<script id="run-initial" type="application/json">{"a": 1}</script>',
        '<button type="button" data-choice="left" aria-pressed="false">Left</button>',
        '<p class="muted">Stylesheets and onions are fine in text: style=, onclick=.</p>',
    ],
)
def test_the_scan_lets_files_and_data_blocks_through(html):
    assert inline_offences(html) == []


def test_no_template_has_inline_script_or_style():
    templates = sorted((settings.BASE_DIR / "templates").rglob("*.html"))
    assert len(templates) > 10

    offences = [
        f"{path.relative_to(settings.BASE_DIR)}: {o}"
        for path in templates
        for o in inline_offences(path.read_text())
    ]

    assert offences == []


def test_no_script_sets_a_style_attribute_or_builds_handlers_from_strings():
    """element.style.x = ... is allowed by the policy; setAttribute("style") and eval are not."""
    scripts = sorted(Path(settings.BASE_DIR / "static" / "js").rglob("*.js"))
    assert scripts
    forbidden = re.compile(
        r"""setAttribute\(\s*["'](?:style|on[a-z]+)["']|\beval\(|new Function\(|\bstyle\s*=\s*\\?["']"""
    )

    offences = [
        f"{path.name}: {m.group(0)}" for path in scripts for m in forbidden.finditer(path.read_text())
    ]

    assert offences == []


# --- The header, on pages, the API and the docs. ----------------------------------------------


@pytest.fixture
def admin_client(client, project):
    admin = MembershipFactory(project=project, role="admin").user
    ComparisonFactory.create_pair(
        project=project, texts=("One **reply**.", "Another <b style='x'>reply</b>.")
    )
    client.force_login(admin)
    return client


def test_the_login_page_carries_the_strict_policy(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert directives(response) == EXPECTED


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/projects/{slug}/",
        "/projects/{slug}/guidelines/",
        "/projects/{slug}/annotate/",
        "/projects/{slug}/dashboard/",
        "/projects/{slug}/import/",
        "/training/{slug}/runs/",
        "/training/{slug}/leaderboard/",
    ],
)
def test_each_page_carries_the_policy_and_needs_no_exception_to_it(admin_client, project, path):
    response = admin_client.get(path.format(slug=project.slug))

    assert response.status_code == 200
    assert directives(response) == EXPECTED
    assert inline_offences(response.content.decode()) == []


def test_api_responses_and_their_errors_carry_the_policy(admin_client, project):
    ok = admin_client.get("/api/projects/")
    missing = admin_client.get("/api/projects/no-such-project/")

    assert ok.status_code == 200 and missing.status_code == 404
    assert directives(ok) == EXPECTED
    assert directives(missing) == EXPECTED


def test_a_refused_anonymous_api_call_carries_the_policy(client):
    response = client.get("/api/projects/")

    assert response.status_code in (401, 403)
    assert directives(response) == EXPECTED


def test_the_policy_allows_no_inline_code_nor_eval():
    header = " ".join(" ".join(v) for v in EXPECTED.values())

    assert "unsafe-inline" not in header and "unsafe-eval" not in header


def test_the_docs_page_loads_its_start_up_script_as_a_file(client):
    client.force_login(UserFactory())

    page = client.get("/api/docs/")
    html = page.content.decode()
    script_urls = re.findall(r'<script\b[^>]*\bsrc="([^"]+)"', html)
    start_up = [url for url in script_urls if "script" in url.split("?", 1)[-1]]
    script = client.get(start_up[0].replace("&amp;", "&")) if start_up else None

    assert directives(page) == EXPECTED
    assert inline_offences(html) == []
    assert script is not None and script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content
    assert b"validator.swagger.io" not in script.content and b'"validatorUrl": null' in script.content


def test_the_admin_carries_the_policy(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    for path in ("/admin/", "/admin/annotation/project/", "/admin/annotation/project/add/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert directives(response) == EXPECTED


# --- The header built once (alignweb/content_security.py) is django-csp's header. --------------


def run_middleware(middleware_class, response=None, *, ask_nonce=False):
    response = HttpResponse() if response is None else response
    request = RequestFactory().get("/api/projects/")
    middleware = middleware_class(lambda request: response)
    middleware.process_request(request)
    if ask_nonce:
        str(request.csp_nonce)
    return request, middleware.process_response(request, response)


def test_the_built_once_header_is_the_one_django_csp_builds():
    _, ours = run_middleware(CSPMiddleware)
    _, theirs = run_middleware(DjangoCSPMiddleware)

    assert ours[HEADER] == theirs[HEADER]
    assert directives(ours) == EXPECTED


def test_a_changed_policy_setting_changes_the_header(settings):
    run_middleware(CSPMiddleware)  # built for the first policy
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {"default-src": [SELF], "img-src": ["https://img.test"]}
    }

    _, response = run_middleware(CSPMiddleware)

    assert directives(response)["img-src"] == ["https://img.test"]


def test_a_view_that_updates_the_policy_still_gets_its_update():
    response = HttpResponse()
    response._csp_update = {"img-src": ["https://img.test"]}  # what @csp_update leaves

    _, response = run_middleware(CSPMiddleware, response)

    assert directives(response)["img-src"] == ["'self'", "data:", "https://img.test"]


def test_an_exempt_view_gets_no_header():
    response = HttpResponse()
    response._csp_exempt = True  # what @csp_exempt leaves

    _, response = run_middleware(CSPMiddleware, response)

    assert HEADER not in response


def test_a_nonce_asked_for_after_the_header_is_written_is_an_error():
    request, _ = run_middleware(CSPMiddleware)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


def test_a_response_whose_page_asked_for_a_nonce_goes_through_django_csp(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE]}}

    request, response = run_middleware(CSPMiddleware, ask_nonce=True)

    assert directives(response)["script-src"] == ["'self'", f"'nonce-{request._csp_nonce}'"]
