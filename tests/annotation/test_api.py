"""The REST API an annotator's browser and a researcher's scripts talk to."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.api.serializers import JudgementSerializer, NextSerializer
from annotation.models import ApiToken, Assignment, Judgement
from annotation.token_keys import key_digest
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory, UserFactory, api_token_key

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_key(user)}")
    return client


@pytest.fixture
def api(annotator):
    return client_for(annotator)


@pytest.fixture
def pair(project):
    return ComparisonFactory.create_pair(
        project=project, texts=("**Bold** A", "Plain B <script>x()</script>")
    )


def next_item(api, project):
    return api.post(f"/api/projects/{project.slug}/next/")


def test_a_token_is_issued_for_a_username_and_password(annotator):
    response = APIClient().post(
        "/api/auth/token/", {"username": "annie", "password": "correct horse battery staple"}
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(user=annotator).digest == key_digest(response.json()["token"])


def test_a_wrong_password_gets_no_token(annotator):
    response = APIClient().post("/api/auth/token/", {"username": "annie", "password": "wrong"})
    assert response.status_code == 400


def test_anonymous_callers_are_refused(project):
    assert APIClient().get("/api/projects/").status_code in (401, 403)
    refused = APIClient().post(f"/api/projects/{project.slug}/next/")
    # The vote loop tries the token first, so it says how to authenticate.
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "Token"
    assert APIClient().post("/api/assignments/1/judgement/", {}, format="json").status_code == 401


def test_the_vote_loop_answers_json_whatever_the_accept_header(project, api, pair):
    response = api.post(f"/api/projects/{project.slug}/next/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["assignment"]["id"]


def test_a_judgement_must_be_sent_as_json(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    url = f"/api/assignments/{assignment_id}/judgement/"

    as_form = api.post(url, {"choice": "left", "strength": 1})  # multipart, APIClient's default

    assert as_form.status_code == 415
    assert "multipart/form-data" in as_form.json()["detail"]
    assert Judgement.objects.count() == 0
    assert api.post(url, {"choice": "left", "strength": 1}, format="json").status_code == 201


def test_session_login_works_with_a_csrf_token(project, annotator, pair):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post(f"/api/projects/{project.slug}/next/").status_code == 403  # no CSRF token
    client.get("/api/projects/")  # any page; the token comes from the cookie the login page sets
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post(f"/api/projects/{project.slug}/next/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_it_lists_only_the_callers_projects_with_their_role(project, api):
    ProjectFactory(name="Secret")
    body = api.get("/api/projects/").json()
    assert [(row["slug"], row["role"]) for row in body] == [(project.slug, "annotator")]


def test_a_project_shows_its_label_scheme(project, api):
    body = api.get(f"/api/projects/{project.slug}/").json()
    assert body["allow_tie"] is True
    assert body["strength_scale"] == ["slight", "clear", "strong"]
    assert body["rationale"] == "optional"
    assert body["overlap"] == 1
    assert "<strong>helpful</strong>" in body["guidelines_html"]


@pytest.mark.parametrize("suffix", ["", "next/", "progress/", "stats/", "comparisons/", "members/"])
def test_another_projects_urls_are_a_404(api, suffix):
    other = ProjectFactory()
    ComparisonFactory.create_pair(project=other)
    method = api.post if suffix == "next/" else api.get
    assert method(f"/api/projects/{other.slug}/{suffix}").status_code == 404


def test_next_serves_the_item_by_side_with_rendered_markdown_and_progress(project, api, pair):
    response = next_item(api, project)

    assert response.status_code == 200
    body = response.json()
    assignment = Assignment.objects.get()
    shown = body["assignment"]
    assert shown["id"] == assignment.pk
    assert [r["side"] for r in shown["responses"]] == ["left", "right"]
    texts = {0: "**Bold** A", 1: "Plain B <script>x()</script>"}
    assert [r["text"] for r in shown["responses"]] == [texts[p] for p in assignment.display_order]
    html = {r["text"]: r["html"] for r in shown["responses"]}
    assert "<strong>Bold</strong>" in html["**Bold** A"]
    assert "<script>" not in html["Plain B <script>x()</script>"]
    assert shown["prompt"]["messages"][0]["role"] == "user"
    assert shown["prompt"]["messages"][0]["html"].startswith("<p>")
    assert body["progress"] == {"done": 0, "left": 1, "total": 1, "left_capped": False}


def test_next_never_tells_an_annotator_where_a_response_came_from(project, api, pair):
    shown = next_item(api, project).json()["assignment"]
    for response in shown["responses"]:
        assert set(response) == {"side", "text", "html"}
    assert "factory" not in str(shown)  # the responses' source_name


def test_next_is_204_when_nothing_is_left(project, api):
    assert next_item(api, project).status_code == 204


def test_a_judgement_is_201_then_a_replay_is_200_with_the_same_judgement(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    url = f"/api/assignments/{assignment_id}/judgement/"
    payload = {"choice": "left", "strength": 2, "rationale": "clearer", "duration_ms": 5300}

    first = api.post(url, payload, format="json")
    replay = api.post(url, payload, format="json")

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert Judgement.objects.count() == 1
    body = first.json()
    assert body["choice_shown"] == "left"
    assignment = Assignment.objects.get(pk=assignment_id)
    assert body["choice"] == ("a" if assignment.display_order[0] == 0 else "b")
    assert (body["strength"], body["rationale"], body["duration_ms"]) == (2, "clearer", 5300)


def test_after_a_judgement_progress_counts_it(project, api, pair):
    ComparisonFactory.create_pair(project=project)
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    api.post(f"/api/assignments/{assignment_id}/judgement/", {"choice": "tie"}, format="json")
    assert next_item(api, project).json()["progress"] == {
        "done": 1,
        "left": 1,
        "total": 2,
        "left_capped": False,
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"choice": "middle"}, "choice"),
        ({}, "choice"),
        ({"choice": "left", "strength": 7}, "strength"),
        ({"choice": "left", "strength": "lots"}, "strength"),
        ({"choice": "left", "strength": 1, "duration_ms": -1}, "duration_ms"),
    ],
)
def test_a_bad_judgement_is_a_400_naming_the_field(project, api, pair, payload, field):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    response = api.post(f"/api/assignments/{assignment_id}/judgement/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Judgement.objects.exists()


def test_a_tie_where_ties_are_not_allowed_is_a_400(project, api, pair):
    project.allow_tie = False
    project.save()
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    response = api.post(f"/api/assignments/{assignment_id}/judgement/", {"choice": "tie"}, format="json")
    assert response.status_code == 400
    assert "ties" in response.json()["errors"]["choice"][0]


def test_someone_elses_assignment_is_a_404(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    bob = client_for(MembershipFactory(project=project, user__username="bob").user)
    body = {"choice": "left", "strength": 0}
    assert bob.post(f"/api/assignments/{assignment_id}/judgement/", body, format="json").status_code == 404
    assert bob.post(f"/api/assignments/{assignment_id}/skip/").status_code == 404


def test_a_lease_taken_over_by_others_is_a_409(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    Assignment.objects.filter(pk=assignment_id).update(expires_at=timezone.now())
    bob = client_for(MembershipFactory(project=project, user__username="bob").user)
    assert next_item(bob, project).status_code == 200  # expires ann's lease and takes the slot

    response = api.post(f"/api/assignments/{assignment_id}/judgement/", {"choice": "tie"}, format="json")

    assert response.status_code == 409
    assert "other annotators" in response.json()["errors"]["assignment"][0]


def test_skip_is_200_and_the_item_is_not_served_again(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    response = api.post(f"/api/assignments/{assignment_id}/skip/")
    assert response.status_code == 200
    assert response.json() == {"id": assignment_id, "status": "skipped"}
    assert next_item(api, project).status_code == 204


def test_progress_is_available_when_the_queue_is_empty(project, api):
    assert api.get(f"/api/projects/{project.slug}/progress/").json() == {
        "done": 0,
        "left": 0,
        "total": 0,
        "left_capped": False,
    }


def test_next_and_submit_use_a_fixed_small_number_of_queries(
    project, api, pair, django_assert_max_num_queries
):
    for _ in range(20):
        ComparisonFactory.create_pair(project=project)
    # Each request is one function call that also checks the token (annotation/sql/principal.sql).
    with django_assert_max_num_queries(1):
        assignment_id = next_item(api, project).json()["assignment"]["id"]
    with django_assert_max_num_queries(1):
        response = api.post(
            f"/api/assignments/{assignment_id}/judgement/", {"choice": "left", "strength": 1}, format="json"
        )
    assert response.status_code == 201


def field_tree(serializer):
    """{name: subtree or None} for a serializer class, following nested serializers."""
    tree = {}
    for name, field in serializer().fields.items():
        child = getattr(field, "child", field)
        tree[name] = field_tree(type(child)) if hasattr(child, "fields") else None
    return tree


def key_tree(value):
    if isinstance(value, list):
        return key_tree(value[0]) if value else None
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    return None


def test_the_answers_have_the_shapes_the_schema_documents(project, api, pair):
    body = next_item(api, project).json()
    assert key_tree(body) == field_tree(NextSerializer)

    url = f"/api/assignments/{body['assignment']['id']}/judgement/"
    judgement = api.post(url, {"choice": "left", "strength": 0}, format="json").json()
    assert key_tree(judgement) == field_tree(JudgementSerializer)


def test_a_bad_token_is_refused(project):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/projects/")
    assert response.status_code in (401, 403)  # 403: session auth comes first and sends no challenge
    assert response.json()["detail"] == "Invalid token."


def presented_key(api) -> str:
    return api._credentials["HTTP_AUTHORIZATION"].removeprefix("Token ")


def deactivate_keeping_the_token(api, user):
    """Deactivation deletes a user's tokens (a trigger); the token is stored again under the same
    key, as a token made for an inactive user would be, so the inactive check itself is tested."""
    user.is_active = False
    user.save()
    api_token_key(user, key=presented_key(api))


def test_an_inactive_users_token_is_refused(project, annotator):
    api = client_for(annotator)
    deactivate_keeping_the_token(api, annotator)
    response = api.get("/api/projects/")
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "User inactive or deleted."


def test_the_vote_loop_refuses_a_bad_token_and_leases_nothing(project, pair):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.post(f"/api/projects/{project.slug}/next/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Invalid token."
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"choice": "sideways"}', "application/json"),
        (b"{not json", "application/json"),
        (b"a=b", "text/plain"),
    ],
    ids=["invalid", "unparsable", "not-json"],
)
def test_a_bad_token_is_a_401_whatever_the_body(project, api, annotator, pair, body, content_type):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.generic(
        "POST", f"/api/assignments/{assignment_id}/judgement/", body, content_type=content_type
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    # The same body with a good token gets the answer about the body.
    assert api.generic(
        "POST", f"/api/assignments/{assignment_id}/judgement/", body, content_type=content_type
    ).status_code in (400, 415)


def test_a_superusers_token_votes_in_any_project(project, pair):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    project.gold_rate, project.overlap = 0.25, 2
    project.save()
    api = client_for(root)

    served = next_item(api, project)
    assignment_id = served.json()["assignment"]["id"]
    judged = api.post(
        f"/api/assignments/{assignment_id}/judgement/", {"choice": "left", "strength": 1}, format="json"
    )

    assert served.status_code == 200
    assert judged.status_code == 201
    assert Judgement.objects.get().annotator == root


def test_next_hands_back_the_projects_settings_in_their_own_fields(project, annotator, pair):
    from annotation.permissions import ANNOTATE
    from annotation.services.queue import comparison_next_by_slug

    project.gold_rate, project.overlap, project.lease_seconds = 0.25, 2, 900
    project.save()

    _, assignment = comparison_next_by_slug(slug=project.slug, annotator=annotator, allowed=ANNOTATE)

    served = assignment.comparison.project
    assert (served.gold_rate, served.overlap, served.lease_seconds) == (0.25, 2, 900)


def test_a_token_revoked_between_next_and_judgement_stores_nothing(project, api, annotator, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    ApiToken.objects.filter(user=annotator).delete()

    response = api.post(f"/api/assignments/{assignment_id}/judgement/", {"choice": "left"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert not Judgement.objects.exists()
    assert Assignment.objects.get().status == "leased"


@pytest.mark.parametrize("long_rationale", [False, True], ids=["valid", "over-the-limit"])
def test_an_inactive_users_vote_is_refused_whatever_the_body(project, api, annotator, pair, long_rationale):
    assignment_id = next_item(api, project).json()["assignment"]["id"]
    deactivate_keeping_the_token(api, annotator)
    # The token is checked before the label scheme: a body the scheme refuses is still a 401.
    payload = {"choice": "left", "strength": 1, "rationale": "x" * (20_000 if long_rationale else 5)}

    judged = api.post(f"/api/assignments/{assignment_id}/judgement/", payload, format="json")
    again = next_item(api, project)

    assert judged.status_code == again.status_code == 401
    assert judged.json()["detail"] == again.json()["detail"] == "User inactive or deleted."
    assert not Judgement.objects.exists()


def test_a_rationale_over_the_limit_is_refused_by_the_function(project, api, pair):
    assignment_id = next_item(api, project).json()["assignment"]["id"]

    response = api.post(
        f"/api/assignments/{assignment_id}/judgement/",
        {"choice": "left", "strength": 1, "rationale": "x" * 20_000},
        format="json",
    )

    assert response.status_code == 400
    assert "the limit is 10000" in str(response.json())
    assert not Judgement.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"choice": "left"},
        {"choice": "right", "strength": 2, "rationale": "  clearer  ", "duration_ms": 1200},
        {"choice": "tie", "strength": None, "rationale": "", "duration_ms": None},
        {"choice": "both_bad", "duration_ms": 0, "extra": "ignored"},
    ],
)
def test_the_judgement_input_fast_path_returns_what_the_serializer_would(payload):
    from annotation.api.serializers import JudgementInputSerializer, judgement_input_as_sent

    form = JudgementInputSerializer(data=payload)
    assert form.is_valid(), form.errors
    assert judgement_input_as_sent(payload) == dict(form.validated_data)


@pytest.mark.parametrize(
    "payload",
    [
        {"choice": "middle"},
        {},
        {"choice": "left", "strength": "1"},  # the serializer coerces it
        {"choice": "left", "strength": True},
        {"choice": "left", "strength": 1.0},
        {"choice": "left", "duration_ms": -1},
        {"choice": "left", "rationale": None},
        {"choice": "left", "rationale": 5},
        {"choice": "left", "rationale": "a\x00b"},
        {"choice": "left", "rationale": "\ud800"},
        ["left"],
    ],
)
def test_anything_else_goes_through_the_serializer(payload):
    from annotation.api.serializers import judgement_input_as_sent

    assert judgement_input_as_sent(payload) is None
