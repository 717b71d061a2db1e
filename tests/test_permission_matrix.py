"""Every route in the URL resolver, as an anonymous caller: HTML pages redirect to the login page,
API endpoints refuse with 401/403. The table below must name every route, so a new route cannot be
added without deciding who may reach it (the other roles' columns are still to come)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

REDIRECT = "redirect"
REFUSED = "refused"
PUBLIC = "public"

ANONYMOUS: dict[str, str] = {
    "login": PUBLIC,
    "logout": PUBLIC,
    # The schema and its docs need a login (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
    "api-schema": REFUSED,
    "api-docs": REFUSED,
    "api-auth-token": PUBLIC,
}
HTML_ROUTES = [
    "project-import",
    "home",
    "project",
    "project-guidelines",
    "annotate",
    "project-dashboard",
    "project-dashboard-export",
    "project-dashboard-gold",
    "project-dashboard-gold-settings",
    "training-runs",
    "training-run-start",
    "training-loop-start",
    "training-run-compare",
    "training-run",
    "training-run-cancel",
    "training-version-register",
    "training-version-promote",
    "training-queue-order",
    "training-leaderboard",
]
API_ROUTES = [
    "api-auth-token-rotate",
    "api-projects",
    "api-project",
    "api-project-next",
    "api-project-progress",
    "api-project-stats",
    "api-project-comparisons",
    "api-project-members",
    "api-project-member",
    "api-judgement",
    "api-skip",
    "api-project-imports",
    "api-project-exports",
    "api-project-export",
    "api-project-export-download",
    "api-project-quality",
    "api-comparison-gold",
    "api-runs",
    "api-closed-loop",
    "api-run",
    "api-run-cancel",
    "api-versions",
    "api-version",
    "api-version-evaluations",
    "api-version-promote",
    "api-generations",
    "api-loop-settings",
    "api-leaderboard",
]
ANONYMOUS.update(dict.fromkeys(HTML_ROUTES, REDIRECT))
ANONYMOUS.update(dict.fromkeys(API_ROUTES, REFUSED))
KWARGS = {"slug": "project-a", "username": "someone"}


def routes(resolver=None, namespace=""):
    """(name, pattern) for every named route the project serves, Django's admin aside."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue
            yield from routes(entry)
        elif isinstance(entry, URLPattern):
            yield entry.name, entry


def fill(pattern) -> dict:
    return {key: KWARGS.get(key, 1) for key in pattern.pattern.converters}


def test_every_route_has_a_row():
    assert sorted({name for name, _ in routes()} - ANONYMOUS.keys()) == []


def test_every_row_has_a_route():
    assert sorted(ANONYMOUS.keys() - {name for name, _ in routes()}) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", [r for r in routes() if ANONYMOUS.get(r[0]) != PUBLIC])
def test_anonymous_caller_is_turned_away(client, name, pattern):
    response = client.get(reverse(name, kwargs=fill(pattern)))
    expected = ANONYMOUS[name]
    if expected == REDIRECT:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code in (401, 403)
