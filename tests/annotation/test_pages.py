"""The server-rendered pages: home, a project's page, its guidelines and the annotator page."""

import json

import pytest
from django.urls import reverse

from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def annotate_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="annotate-config" type="application/json">') + len(
        '<script id="annotate-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_home_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_home_lists_only_my_projects_with_my_role_and_progress(client, project, annotator):
    ComparisonFactory.create_pair(project=project)
    ComparisonFactory.create_pair(project=project)
    ProjectFactory(name="Somebody Else's Project")
    client.force_login(annotator)

    html = client.get(reverse("home")).content.decode()

    assert project.name in html
    assert "Somebody Else" not in html
    assert "Annotator" in html
    assert "0 done · 2 left" in html
    assert reverse("annotate", args=[project.slug]) in html


def test_a_count_of_items_left_that_stopped_at_the_cap_reads_as_at_least_that_many(
    client, project, annotator, monkeypatch
):
    from annotation import selectors

    monkeypatch.setattr(selectors, "PROGRESS_LEFT_CAP", 2)
    for _ in range(3):
        ComparisonFactory.create_pair(project=project)
    client.force_login(annotator)

    home = client.get(reverse("home")).content.decode()
    page = client.get(reverse("project", args=[project.slug])).content.decode()
    annotate = client.get(reverse("annotate", args=[project.slug])).content.decode()

    assert "0 done · 2+ left" in home
    assert "<strong>2+</strong> left for you" in page
    assert '<strong id="progress-left">2+</strong> left' in annotate


def test_home_tells_a_user_without_projects_what_to_do(client, outsider):
    client.force_login(outsider)
    assert "not a member of any project" in client.get(reverse("home")).content.decode()


def test_a_project_page_is_a_404_for_an_outsider(client, project, outsider):
    client.force_login(outsider)
    for name in ("project", "project-guidelines", "annotate"):
        assert client.get(reverse(name, args=[project.slug])).status_code == 404, name


def test_researchers_see_the_project_data_on_its_page(client, project, researcher):
    ComparisonFactory.create_pair(project=project)
    client.force_login(researcher)

    html = client.get(reverse("project", args=[project.slug])).content.decode()

    assert "Project data" in html
    for page in ("project-import", "project-dashboard", "training-runs", "training-leaderboard"):
        assert reverse(page, args=[project.slug]) in html, page


def test_annotators_do_not_see_the_project_data(client, project, annotator):
    client.force_login(annotator)
    html = client.get(reverse("project", args=[project.slug])).content.decode()
    assert "Project data" not in html
    for page in ("project-import", "project-dashboard", "training-runs"):
        assert reverse(page, args=[project.slug]) not in html, page


def test_the_guidelines_page_renders_sanitised_markdown(client, project, annotator):
    project.guidelines = "Prefer **honest** answers.<script>alert(1)</script>"
    project.save()
    client.force_login(annotator)

    html = client.get(reverse("project-guidelines", args=[project.slug])).content.decode()

    assert "<strong>honest</strong>" in html
    assert "alert(1)" not in html


def test_the_annotator_page_carries_the_label_scheme_and_the_api_urls(client, project, annotator):
    client.force_login(annotator)

    response = client.get(reverse("annotate", args=[project.slug]))

    assert response.status_code == 200
    config = annotate_config(response)
    assert config["nextUrl"] == f"/api/projects/{project.slug}/next/"
    assert config["judgementUrl"] == "/api/assignments/0/judgement/"
    assert config["skipUrl"] == "/api/assignments/0/skip/"
    assert [s["label"] for s in config["strengths"]] == ["slight", "clear", "strong"]
    assert [s["key"] for s in config["strengths"]] == ["Q", "W", "E"]
    assert response.cookies["csrftoken"].value


def test_the_annotator_page_offers_tie_and_both_bad_only_when_the_project_allows_them(client, annotator):
    project = ProjectFactory(allow_tie=False, allow_both_bad=False, strength_scale=[])
    MembershipFactory(project=project, user=annotator)
    client.force_login(annotator)

    response = client.get(reverse("annotate", args=[project.slug]))
    html = response.content.decode()

    assert 'data-choice="left"' in html and 'data-choice="right"' in html
    assert 'data-choice="tie"' not in html
    assert 'data-choice="both_bad"' not in html
    assert 'id="strengths"' not in html
    config = annotate_config(response)
    assert config["allowTie"] is False and config["allowBothBad"] is False


def test_the_annotator_page_says_when_a_rationale_is_required(client, annotator):
    project = ProjectFactory(rationale="required")
    MembershipFactory(project=project, user=annotator)
    client.force_login(annotator)

    html = client.get(reverse("annotate", args=[project.slug])).content.decode()

    assert 'aria-required="true"' in html
    assert "(required)" in html


def test_the_annotator_page_has_no_rationale_box_when_the_project_does_not_ask(client, annotator):
    project = ProjectFactory(rationale="off")
    MembershipFactory(project=project, user=annotator)
    client.force_login(annotator)

    html = client.get(reverse("annotate", args=[project.slug])).content.decode()

    assert 'id="rationale"' not in html


def test_the_annotator_page_shows_the_guidelines_in_its_overlay(client, project, annotator):
    client.force_login(annotator)
    html = client.get(reverse("annotate", args=[project.slug])).content.decode()
    assert '<dialog id="guidelines"' in html
    assert "<strong>helpful</strong>" in html  # ProjectFactory's guidelines, rendered
