"""What researchers see of a project's data, and what annotators do not."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.services.judgements import judgement_submit
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory, api_token_key

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_key(user)}")
    return client


@pytest.mark.parametrize("suffix", ["stats/", "comparisons/", "members/"])
def test_annotators_only_see_their_queue(project, annotator, suffix):
    response = client_for(annotator).get(f"/api/projects/{project.slug}/{suffix}")
    assert response.status_code == 403
    assert "annotator" in response.json()["detail"]


def test_stats_count_the_projects_work(project, annotator, researcher):
    project.overlap = 1
    project.save()
    ComparisonFactory.create_pair(project=project)
    ComparisonFactory.create_pair(project=project, prior_choice="a", prior_source="hh")
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown="tie",
        strength=None,
        rationale="",
        duration_ms=1,
    )
    comparison_next_for_annotator(project=project, annotator=researcher)

    body = client_for(researcher).get(f"/api/projects/{project.slug}/stats/").json()

    assert body == {
        "prompts": 2,
        "comparisons": 2,
        "completed": 1,
        "gold": 0,
        "with_prior": 1,
        "judgements": 1,
        "live_leases": 1,
        "overlap": 1,
        "per_annotator": [{"username": "annie", "judgements": 1}],
    }


def test_comparisons_are_paginated_with_responses_and_sources(project, researcher):
    for _ in range(3):
        ComparisonFactory.create_pair(project=project)

    body = client_for(researcher).get(f"/api/projects/{project.slug}/comparisons/?page_size=2").json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]
    first = body["results"][0]
    assert [r["position"] for r in first["responses"]] == [0, 1]
    assert first["responses"][0]["source_name"] == "factory"
    assert first["prompt"][0]["role"] == "user"


def test_the_comparison_list_costs_the_same_for_3_or_30_items(project, researcher):
    api = client_for(researcher)

    def queries_for_a_page():
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"/api/projects/{project.slug}/comparisons/").status_code == 200
        return len(queries)

    for _ in range(3):
        ComparisonFactory.create_pair(project=project)
    few = queries_for_a_page()
    for _ in range(27):
        ComparisonFactory.create_pair(project=project)
    assert queries_for_a_page() == few
