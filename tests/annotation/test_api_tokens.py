"""API tokens: stored as digests, expiring, rotated on demand, revoked with the password or the
account, and checked the same way by the API and by the vote path's SQL."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import ApiToken, Assignment
from annotation.token_keys import key_digest
from tests.factories import ComparisonFactory, api_token_key

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def obtain(username="annie", password=PASSWORD):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password}, format="json")


@pytest.fixture
def pair(project):
    return ComparisonFactory.create_pair(project=project)


@pytest.fixture(params=["throttled", "unthrottled"])
def vote_path(request):
    """The vote path both ways: with a per-user throttle the token is checked in Python before it
    (annotation.token_bearer), without one inside the vote's SQL call (principal.sql)."""
    cache.clear()
    rate = "1000/minute" if request.param == "throttled" else None
    with override_settings(ALIGNWEB_THROTTLE_USER=rate):
        yield request.param
    cache.clear()


def test_a_token_is_answered_once_and_stored_as_its_digest(annotator):
    response = obtain()

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "prefix", "expires_at"}
    stored = ApiToken.objects.get(user=annotator)
    assert stored.digest == key_digest(body["token"])
    assert stored.prefix == body["token"][:8] == body["prefix"]
    assert body["token"] not in {stored.digest, stored.prefix}
    assert client_with(body["token"]).get("/api/projects/").status_code == 200


def test_each_request_gets_a_new_token_and_the_earlier_ones_keep_working(annotator):
    first, second = obtain().json()["token"], obtain().json()["token"]

    assert first != second
    assert client_with(first).get("/api/projects/").status_code == 200
    assert client_with(second).get("/api/projects/").status_code == 200


@pytest.mark.parametrize("key", ["plain-ascii-key_0123456789", "", "ключ 🔑 ünïcode", "a" * 500])
def test_the_databases_digest_is_the_pythons(key):
    with connection.cursor() as cursor:
        cursor.execute("SELECT annotation_token_digest(%s)", [key])
        assert cursor.fetchone()[0] == key_digest(key)


@override_settings(ALIGNWEB_TOKEN_TTL_DAYS=3)
def test_a_token_expires_after_the_configured_days(annotator):
    before = timezone.now()
    expires_at = ApiToken.objects.get(digest=key_digest(obtain().json()["token"])).expires_at

    assert before + timedelta(days=3) <= expires_at <= timezone.now() + timedelta(days=3)


def test_an_expired_token_is_refused_by_the_api(annotator):
    key = api_token_key(annotator, expires_at=timezone.now() - timedelta(seconds=1))

    response = client_with(key).get("/api/projects/")

    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Token has expired."


def test_an_expired_token_leases_nothing_on_the_vote_path(project, annotator, pair, vote_path):
    key = api_token_key(annotator, expires_at=timezone.now() - timedelta(seconds=1))

    response = client_with(key).post(f"/api/projects/{project.slug}/next/")

    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired."
    assert not Assignment.objects.exists()


def test_a_token_within_its_time_votes(project, annotator, pair, vote_path):
    key = api_token_key(annotator, expires_at=timezone.now() + timedelta(minutes=1))

    assert client_with(key).post(f"/api/projects/{project.slug}/next/").status_code == 200


def test_rotating_replaces_the_token_the_request_came_with(project, annotator, pair, vote_path):
    old = api_token_key(annotator)
    other = api_token_key(annotator)

    response = client_with(old).post("/api/auth/token/rotate/")

    assert response.status_code == 201
    new = response.json()["token"]
    assert new != old
    assert client_with(old).get("/api/projects/").json()["detail"] == "Invalid token."
    assert client_with(old).post(f"/api/projects/{project.slug}/next/").status_code == 401
    assert client_with(new).post(f"/api/projects/{project.slug}/next/").status_code == 200
    assert client_with(other).get("/api/projects/").status_code == 200  # only the one presented


def test_a_session_has_no_token_to_rotate(annotator):
    client = APIClient()
    client.force_login(annotator)

    assert client.post("/api/auth/token/rotate/").status_code == 401
    assert not ApiToken.objects.exists()


def test_a_rotation_that_lost_a_race_gets_no_token(annotator):
    from annotation.services.errors import Conflict
    from annotation.services.tokens import api_token_rotate

    key = api_token_key(annotator)
    api_token_rotate(user=annotator, digest=key_digest(key))

    with pytest.raises(Conflict):
        api_token_rotate(user=annotator, digest=key_digest(key))
    assert ApiToken.objects.filter(user=annotator).count() == 1


def change_password_with_save(user):
    user.set_password("another horse battery staple")
    user.save()


def change_password_with_update(user):
    get_user_model().objects.filter(pk=user.pk).update(password="!unusable")


def deactivate_with_save(user):
    user.is_active = False
    user.save()


def deactivate_with_update(user):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.parametrize(
    "change",
    [change_password_with_save, change_password_with_update, deactivate_with_save, deactivate_with_update],
)
def test_a_new_password_or_a_deactivation_revokes_every_token(project, annotator, outsider, pair, change):
    keys = [api_token_key(annotator), api_token_key(annotator)]
    kept = api_token_key(outsider)

    change(annotator)

    assert not ApiToken.objects.filter(user=annotator).exists()
    for key in keys:
        assert client_with(key).get("/api/projects/").json()["detail"] == "Invalid token."
        assert client_with(key).post(f"/api/projects/{project.slug}/next/").status_code == 401
    assert client_with(kept).get("/api/projects/").status_code == 200


def test_other_changes_to_the_user_keep_the_tokens(annotator):
    key = api_token_key(annotator)
    annotator.first_name, annotator.last_login = "Annie", timezone.now()
    annotator.save()
    annotator.is_active = True  # already active: no change
    annotator.save(update_fields=["is_active"])

    assert client_with(key).get("/api/projects/").status_code == 200


LEGACY_KEY = "legacy0123456789abcdef"


def test_the_migration_turns_drf_tokens_into_digests_under_the_same_key(annotator):
    migration = importlib.import_module("annotation.migrations.0004_auth")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL,"
            " user_id integer NOT NULL)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [LEGACY_KEY, annotator.pk])

    with connection.schema_editor(atomic=False) as schema_editor:
        migration.convert_tokens(apps, schema_editor)

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token')")
        assert cursor.fetchone()[0] is None  # the plain keys are gone
    assert ApiToken.objects.get(user=annotator).prefix == "legacy01"
    assert client_with(LEGACY_KEY).get("/api/projects/").status_code == 200


def test_the_schema_types_both_token_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/auth/token/", "/api/auth/token/rotate/"):
        created = schema["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]
        assert created["schema"] == {"$ref": "#/components/schemas/IssuedToken"}
    fields = schema["components"]["schemas"]["IssuedToken"]["properties"]
    assert set(fields) == {"token", "prefix", "expires_at"}
    assert fields["expires_at"]["format"] == "date-time"
