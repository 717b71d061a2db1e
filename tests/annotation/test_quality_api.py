import pytest
from rest_framework.test import APIClient

from tests.factories import ComparisonFactory, judgement

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_researchers_get_the_quality_report(project, researcher, annotator):
    judgement(ComparisonFactory.create_pair(project=project), annotator, "a", duration_ms=100)
    response = api_as(researcher).get(f"/api/projects/{project.slug}/quality/?fast_ms=500")
    assert response.status_code == 200
    body = response.json()
    assert body["project"]["judgements"] == 1
    assert body["project"]["bias"]["fast_rate"] == 1.0
    assert body["annotators"][0]["username"] == "annie"


def test_it_refuses_a_bad_fast_threshold(project, researcher):
    response = api_as(researcher).get(f"/api/projects/{project.slug}/quality/?fast_ms=soon")
    assert response.status_code == 400
    assert "fast_ms" in response.json()["errors"]


def test_annotators_and_outsiders_do_not_get_the_report(project, annotator, outsider):
    assert api_as(annotator).get(f"/api/projects/{project.slug}/quality/").status_code == 403
    assert api_as(outsider).get(f"/api/projects/{project.slug}/quality/").status_code == 404
