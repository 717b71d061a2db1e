"""The API schema and its documentation page are for signed-in users only."""

import re

import pytest
from django.conf import settings

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = ("/api/schema/", "/api/docs/")


@pytest.mark.parametrize("url", PAGES)
def test_an_anonymous_visitor_is_refused(client, url):
    response = client.get(url)

    assert response.status_code in (401, 403)
    assert b"openapi" not in response.content.lower()


@pytest.mark.parametrize("url", PAGES)
def test_a_signed_in_user_is_served(client, url):
    client.force_login(UserFactory())

    response = client.get(url)

    assert response.status_code == 200


EXTERNAL = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def test_the_docs_page_loads_its_scripts_from_our_static_files(client):
    client.force_login(UserFactory())

    html = client.get("/api/docs/").content.decode()

    assert f"{settings.STATIC_URL.rstrip('/')}/drf_spectacular_sidecar/" in html
    assert not re.search(r"https?://", html), "the docs page names an outside address"


def test_no_template_loads_a_script_or_stylesheet_from_another_site():
    templates = sorted((settings.BASE_DIR / "templates").rglob("*.html"))
    assert templates

    offenders = [str(path) for path in templates if EXTERNAL.search(path.read_text())]

    assert offenders == []


def test_the_pattern_catches_an_outside_script():
    assert EXTERNAL.search('<script src="https://cdn.example.com/x.js"></script>')
    assert EXTERNAL.search("<link rel=stylesheet href='//cdn.example.com/x.css'>")
    assert not EXTERNAL.search('<script src="/static/x.js"></script>')
