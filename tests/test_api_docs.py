"""The API schema and its documentation page are for signed-in users only."""

import pytest

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
