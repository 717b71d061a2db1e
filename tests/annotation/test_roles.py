"""Admins manage a project's members; nobody else can, and a project always keeps an admin."""

import pytest
from rest_framework.test import APIClient

from annotation.models import Membership
from tests.factories import UserFactory, api_token_key

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_key(user)}")
    return client


@pytest.fixture
def admin_api(project_admin):
    return client_for(project_admin)


def members_url(project, username=""):
    return f"/api/projects/{project.slug}/members/" + (f"{username}/" if username else "")


def test_an_admin_lists_members_with_roles(project, admin_api, annotator, researcher):
    assert admin_api.get(members_url(project)).json() == [
        {"username": "adam", "role": "admin"},
        {"username": "annie", "role": "annotator"},
        {"username": "rita", "role": "researcher"},
    ]


def test_an_admin_adds_a_member_then_changes_their_role(project, admin_api):
    UserFactory(username="newt", email="newt@example.org")

    added = admin_api.post(
        members_url(project),
        {"username": "newt", "email": "Newt@Example.org", "role": "annotator"},
        format="json",
    )
    changed = admin_api.post(members_url(project), {"username": "newt", "role": "researcher"}, format="json")

    assert added.status_code == 201
    assert added.json() == {"username": "newt", "role": "annotator"}  # the address is not echoed
    assert changed.status_code == 200
    assert Membership.objects.get(project=project, user__username="newt").role == "researcher"


# --- An admin cannot probe which usernames exist. --------------------------------------------


def test_an_existing_username_and_a_missing_one_get_the_same_answer(project, admin_api):
    UserFactory(username="olga", email="olga@example.org")
    UserFactory(username="mute", email="")  # an account without an address

    def answer(username, email=None):
        payload = {"username": username, "role": "annotator"} | ({"email": email} if email else {})
        response = admin_api.post(members_url(project), payload, format="json")
        return response.status_code, response.json()

    answers = {
        "existing, no address": answer("olga"),
        "missing, no address": answer("nobody"),
        "existing, not their address": answer("olga", "guess@example.org"),
        "missing, an address": answer("nobody", "guess@example.org"),
        "missing, someone else's address": answer("nobody", "olga@example.org"),
        "existing, without an address on the account": answer("mute", "mute@example.org"),
    }

    refusal = (400, {"errors": {"email": ["No account has this username with this email address."]}})
    assert answers == dict.fromkeys(answers, refusal)
    assert not Membership.objects.filter(project=project, user__username__in=["olga", "mute"]).exists()


def test_the_right_username_and_address_add_the_member(project, admin_api):
    UserFactory(username="olga", email="olga@example.org")

    response = admin_api.post(
        members_url(project),
        {"username": "olga", "email": "olga@example.org", "role": "researcher"},
        format="json",
    )

    assert response.status_code == 201
    assert Membership.objects.get(project=project, user__username="olga").role == "researcher"


def test_a_malformed_address_is_a_400_on_email_whoever_is_named(project, admin_api, outsider):
    answers = [
        admin_api.post(
            members_url(project), {"username": name, "email": "not-an-address", "role": "annotator"}
        )
        for name in ("olga", "nobody")
    ]

    assert answers[0].status_code == answers[1].status_code == 400
    assert answers[0].json() == answers[1].json()
    assert "email" in answers[0].json()["errors"]


def test_an_admin_removes_a_member(project, admin_api, annotator):
    assert admin_api.delete(members_url(project, "annie")).status_code == 204
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    assert client_for(annotator).get(f"/api/projects/{project.slug}/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "nobody", "role": "annotator"}, "email"),
        ({"username": "annie", "role": "owner"}, "role"),
        ({"role": "annotator"}, "username"),
    ],
)
def test_a_bad_member_request_is_a_400(project, admin_api, annotator, payload, field):
    response = admin_api.post(members_url(project), payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_removing_someone_who_is_not_a_member_is_a_400(project, admin_api, outsider):
    assert admin_api.delete(members_url(project, "olga")).status_code == 400


def test_the_last_admin_can_neither_leave_nor_be_demoted(project, admin_api):
    assert admin_api.delete(members_url(project, "adam")).status_code == 400
    demote = admin_api.post(members_url(project), {"username": "adam", "role": "annotator"}, format="json")
    assert demote.status_code == 400
    assert "admin" in demote.json()["errors"]["role"][0]


def test_an_admin_may_step_down_once_there_is_another(project, admin_api, researcher):
    admin_api.post(members_url(project), {"username": "rita", "role": "admin"}, format="json")
    assert admin_api.delete(members_url(project, "adam")).status_code == 204


@pytest.mark.parametrize("user_fixture", ["annotator", "researcher"])
def test_only_admins_manage_members(request, project, user_fixture, outsider):
    api = client_for(request.getfixturevalue(user_fixture))
    assert api.get(members_url(project)).status_code == 403
    response = api.post(members_url(project), {"username": "olga", "role": "admin"}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(user=outsider).exists()


def test_an_outsider_gets_a_404_for_members(project, outsider):
    assert client_for(outsider).get(members_url(project)).status_code == 404


def test_researchers_see_project_data(project, researcher):
    api = client_for(researcher)
    assert api.get(f"/api/projects/{project.slug}/stats/").status_code == 200
    assert api.get(f"/api/projects/{project.slug}/comparisons/").status_code == 200


def test_a_superuser_acts_as_admin_everywhere(project):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    api = client_for(root)
    assert api.get(members_url(project)).status_code == 200
    assert [row["role"] for row in api.get("/api/projects/").json()] == ["admin"]
