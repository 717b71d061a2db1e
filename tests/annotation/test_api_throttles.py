"""Request rates: per user on the API, the vote's two calls included, and per address for
anonymous callers; over the rate is a 429 with Retry-After. The rest of the suite runs with the
throttles off (tests/environment.py); these tests turn them on and start from an empty cache."""

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.test import APIClient

from annotation.models import Assignment
from tests.factories import ComparisonFactory, api_token_key

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def empty_cache(redis_url):
    cache.clear()
    yield
    cache.clear()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def pairs(project):
    return [ComparisonFactory.create_pair(project=project) for _ in range(3)]


def assert_throttled(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


@override_settings(ALIGNWEB_THROTTLE_USER="3/minute")
def test_the_vote_endpoints_count_against_the_users_rate(project, annotator, pairs):
    api = client_with(api_token_key(annotator))
    assignment_id = api.post(f"/api/projects/{project.slug}/next/").json()["assignment"]["id"]
    vote = {"choice": "left", "strength": 1}
    judged = api.post(f"/api/assignments/{assignment_id}/judgement/", vote, format="json")
    assert judged.status_code == 201
    assert api.post(f"/api/projects/{project.slug}/next/").status_code == 200

    assert_throttled(api.post(f"/api/projects/{project.slug}/next/"))
    assert Assignment.objects.count() == 2  # the refused call leased nothing


@override_settings(ALIGNWEB_THROTTLE_USER="2/minute")
def test_the_rate_is_per_user_whichever_token_or_session(project, annotator, outsider, pairs):
    first, second = client_with(api_token_key(annotator)), client_with(api_token_key(annotator))
    session = APIClient()
    session.force_login(annotator)

    assert first.post(f"/api/projects/{project.slug}/next/").status_code == 200
    assert second.get("/api/projects/").status_code == 200
    assert_throttled(first.get("/api/projects/"))
    assert_throttled(second.post(f"/api/projects/{project.slug}/next/"))
    assert_throttled(session.post(f"/api/projects/{project.slug}/next/"))
    # Someone else is counted apart.
    assert client_with(api_token_key(outsider)).get("/api/projects/").status_code == 200


@override_settings(ALIGNWEB_THROTTLE_USER="1/minute")
def test_a_bad_token_is_refused_before_anything_is_counted(project, annotator, pairs):
    stranger = client_with("not-a-real-token")
    for _ in range(3):
        refused = stranger.post(f"/api/projects/{project.slug}/next/")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "Invalid token."

    api = client_with(api_token_key(annotator))
    assert api.post(f"/api/projects/{project.slug}/next/").status_code == 200


@override_settings(ALIGNWEB_THROTTLE_ANON="2/minute")
def test_anonymous_token_requests_are_counted_per_address(annotator):
    def obtain(address):
        return APIClient(REMOTE_ADDR=address).post(
            "/api/auth/token/", {"username": "annie", "password": PASSWORD}, format="json"
        )

    assert obtain("10.0.0.1").status_code == 201
    assert obtain("10.0.0.1").status_code == 201
    assert_throttled(obtain("10.0.0.1"))
    assert obtain("10.0.0.2").status_code == 201


@override_settings(ALIGNWEB_THROTTLE_ANON="2/minute")
def test_a_forwarded_for_header_is_not_trusted_without_a_proxy(annotator):
    def obtain(forwarded):
        return APIClient().post(
            "/api/auth/token/",
            {"username": "annie", "password": PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    assert obtain("192.0.2.1").status_code == 201
    assert obtain("192.0.2.2").status_code == 201
    assert_throttled(obtain("192.0.2.3"))


@override_settings(ALIGNWEB_THROTTLE_ANON=None, ALIGNWEB_THROTTLE_USER=None)
def test_off_lets_everything_through(project, annotator, pairs):
    api = client_with(api_token_key(annotator))
    for _ in range(30):
        assert api.get("/api/projects/").status_code == 200


@pytest.mark.parametrize(
    "raw, rate",
    [("60/minute", "60/minute"), (" 5/S ", "5/s"), ("off", None), ("OFF", None), ("100/day", "100/day")],
)
def test_a_rate_is_read_from_the_environment(monkeypatch, raw, rate):
    from alignweb.settings import _rate

    monkeypatch.setenv("ALIGNWEB_THROTTLE_TEST", raw)
    assert _rate("ALIGNWEB_THROTTLE_TEST", "1/minute") == rate


@pytest.mark.parametrize("raw", ["60", "sixty/minute", "60/fortnight", "60 per minute", ""])
def test_a_bad_rate_stops_the_process_naming_the_variable(monkeypatch, raw):
    from alignweb.settings import _rate

    monkeypatch.setenv("ALIGNWEB_THROTTLE_TEST", raw)
    with pytest.raises(ImproperlyConfigured, match="ALIGNWEB_THROTTLE_TEST"):
        _rate("ALIGNWEB_THROTTLE_TEST", "1/minute")
