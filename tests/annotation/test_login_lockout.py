"""Failed logins lock out a username, and an address, for a while: the login form, the admin's
login and the token endpoint alike answer 429 with Retry-After, even to the right password."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import ApiToken
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limit_of_three")]

PASSWORD = "correct horse battery staple"
COOL_OFF_SECONDS = 15 * 60


@pytest.fixture
def limit_of_three():
    with override_settings(AXES_FAILURE_LIMIT=3):
        yield


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True, is_superuser=True)


def form_login(username, password, address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/accounts/login/", {"username": username, "password": password})


def admin_login(username, password, address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"}
    )


def token_login(username, password, address="10.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )


def assert_locked_out(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(COOL_OFF_SECONDS)


LOGINS = {"form": form_login, "admin": admin_login, "token": token_login}
SUCCESS = {"form": 302, "admin": 302, "token": 201}


@pytest.mark.parametrize("kind", LOGINS)
def test_the_third_failure_locks_out_even_the_right_password(staff, kind):
    login = LOGINS[kind]
    assert login("sam", "wrong").status_code in (200, 400)
    assert login("sam", "wrong").status_code in (200, 400)

    assert_locked_out(login("sam", "wrong"))
    assert_locked_out(login("sam", PASSWORD))
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("kind", LOGINS)
def test_failures_under_the_limit_still_let_the_right_password_in(staff, kind):
    login = LOGINS[kind]
    login("sam", "wrong")
    login("sam", "wrong")

    assert login("sam", PASSWORD).status_code == SUCCESS[kind]


def test_the_login_page_says_so_and_logs_nobody_in(staff):
    for _ in range(3):
        form_login("sam", "wrong")
    client = Client(REMOTE_ADDR="10.0.0.1")

    response = client.post("/accounts/login/", {"username": "sam", "password": PASSWORD})

    assert_locked_out(response)
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_token_endpoint_answers_json(staff):
    for _ in range(3):
        token_login("sam", "wrong")

    response = token_login("sam", PASSWORD)

    assert_locked_out(response)
    assert response.json() == {"detail": "Too many failed login attempts. Try again later."}


def test_failures_for_one_username_from_many_addresses_lock_that_username(staff, outsider):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        token_login("sam", "wrong", address=address)

    assert_locked_out(token_login("sam", PASSWORD, address="10.0.0.4"))
    assert token_login("olga", PASSWORD, address="10.0.0.4").status_code == 201


def test_failures_from_one_address_for_many_usernames_lock_that_address(staff, outsider):
    for username in ("nobody1", "nobody2", "nobody3"):
        token_login(username, "wrong", address="10.0.0.9")

    assert_locked_out(token_login("olga", PASSWORD, address="10.0.0.9"))
    assert token_login("olga", PASSWORD, address="10.0.0.10").status_code == 201


def test_the_lockout_ends_after_the_cool_off(staff):
    for _ in range(3):
        token_login("sam", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=COOL_OFF_SECONDS + 1))

    assert token_login("sam", PASSWORD).status_code == 201
