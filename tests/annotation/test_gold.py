import pytest
from rest_framework.test import APIClient

from annotation.models import Comparison
from annotation.quality.gold import annotators_flagged, gold_records
from annotation.quality.report import project_quality_report
from tests.factories import ComparisonFactory, MembershipFactory, judgement

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def gold_url(project, comparison) -> str:
    return f"/api/projects/{project.slug}/comparisons/{comparison.pk}/gold/"


def test_a_researcher_marks_a_comparison_as_gold_and_unmarks_it(project, researcher):
    comparison = ComparisonFactory.create_pair(project=project)
    response = api_as(researcher).put(gold_url(project, comparison), {"gold_choice": "b"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"id": comparison.pk, "is_gold": True, "gold_choice": "b"}
    comparison.refresh_from_db()
    assert (comparison.is_gold, comparison.gold_choice) == (True, "b")
    response = api_as(researcher).put(gold_url(project, comparison), {"gold_choice": None}, format="json")
    comparison.refresh_from_db()
    assert (comparison.is_gold, comparison.gold_choice) == (False, "")


def test_it_refuses_an_answer_the_project_does_not_allow(project, researcher):
    project.allow_tie = False
    project.save()
    comparison = ComparisonFactory.create_pair(project=project)
    client = api_as(researcher)
    response = client.put(gold_url(project, comparison), {"gold_choice": "tie"}, format="json")
    assert response.status_code == 400
    assert "gold_choice" in response.json()["errors"]
    response = client.put(gold_url(project, comparison), {"gold_choice": "left"}, format="json")
    assert response.status_code == 400
    response = client.put(gold_url(project, comparison), {}, format="json")
    assert response.status_code == 400
    assert not Comparison.objects.get(pk=comparison.pk).is_gold


def test_annotators_may_not_mark_gold_and_outsiders_do_not_see_the_project(project, annotator, outsider):
    comparison = ComparisonFactory.create_pair(project=project)
    assert (
        api_as(annotator).put(gold_url(project, comparison), {"gold_choice": "a"}, format="json").status_code
        == 403
    )
    assert (
        api_as(outsider).put(gold_url(project, comparison), {"gold_choice": "a"}, format="json").status_code
        == 404
    )


def test_another_projects_comparison_is_a_404(project, researcher):
    other = ComparisonFactory.create_pair(project=MembershipFactory().project)
    assert (
        api_as(researcher).put(gold_url(project, other), {"gold_choice": "a"}, format="json").status_code
        == 404
    )


def test_the_dashboard_form_marks_gold(client, project, researcher):
    comparison = ComparisonFactory.create_pair(project=project)
    client.force_login(researcher)
    response = client.post(
        f"/projects/{project.slug}/dashboard/gold/", {"comparison": comparison.pk, "gold_choice": "a"}
    )
    assert response.status_code == 302
    comparison.refresh_from_db()
    assert (comparison.is_gold, comparison.gold_choice) == (True, "a")
    response = client.post(f"/projects/{project.slug}/dashboard/gold/", {"comparison": "x"}, follow=True)
    assert b"give the comparison" in response.content


def test_gold_accuracy_is_tracked_and_careless_annotators_are_flagged(project):
    careful, careless, new = (
        MembershipFactory(project=project, user__username=name).user
        for name in ("careful", "careless", "new")
    )
    for i in range(3):
        gold = ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a")
        judgement(gold, careful, "a")
        judgement(gold, careless, "a" if i == 0 else "b")
        if i < 2:
            judgement(gold, new, "b")  # wrong twice, but two items are too few to judge anyone
    records = gold_records(project=project)
    assert (records[careful.pk].seen, records[careful.pk].correct) == (3, 3)
    assert records[careless.pk].accuracy == pytest.approx(1 / 3)
    assert annotators_flagged(project=project) == {careless.pk}
    report = project_quality_report(project=project)
    flags = {row["username"]: row["flagged"] for row in report["annotators"]}
    assert flags == {"careful": False, "careless": True, "new": False}
    assert report["project"]["gold"]["flagged"] == 1
    assert report["project"]["gold"]["accuracy"] == pytest.approx(4 / 8)


def test_the_dashboard_sets_the_gold_rate_and_threshold(client, project, researcher):
    client.force_login(researcher)
    url = f"/projects/{project.slug}/dashboard/gold-settings/"
    response = client.post(url, {"gold_rate": "0.1", "gold_accuracy_threshold": "0.8"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.gold_rate, project.gold_accuracy_threshold) == (0.1, 0.8)
    response = client.post(url, {"gold_rate": "2", "gold_accuracy_threshold": "0.8"}, follow=True)
    assert b"gold_rate must be between 0 and 1" in response.content
    project.refresh_from_db()
    assert project.gold_rate == 0.1


def test_annotators_cannot_change_gold_settings(client, project, annotator):
    client.force_login(annotator)
    response = client.post(
        f"/projects/{project.slug}/dashboard/gold-settings/",
        {"gold_rate": "1", "gold_accuracy_threshold": "0"},
    )
    assert response.status_code == 404
