import hashlib

import pytest
from rest_framework.test import APIClient

from annotation.models import Export
from annotation.services.export_jobs import export_run
from annotation.tasks import export_run_task
from tests.factories import ComparisonFactory, judgement

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def judged(project, annotator):
    comparison = ComparisonFactory.create_pair(project=project, texts=("Yes.", "No."))
    judgement(comparison, annotator, "a")
    return comparison


def test_a_researcher_queues_an_export_that_runs_after_commit(
    project, researcher, judged, media, django_capture_on_commit_callbacks
):
    client = api_as(researcher)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            f"/api/projects/{project.slug}/exports/", {"format": "trl", "min_votes": 1}, format="json"
        )
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["download_url"]) == ("queued", None)
    assert body["options"]["min_votes"] == 1 and body["options"]["aggregation"] == "majority"
    assert body["options"]["conversational"] is True  # trl is chat messages unless asked for text
    assert len(callbacks) == 1  # the task is enqueued once the row is committed, not before

    export_run_task(body["id"])  # what the worker does
    export = Export.objects.get(pk=body["id"])
    assert export.state == "succeeded" and export.rows == 1
    assert (media / export.path).parent == media / "exports" / project.slug

    detail = client.get(f"/api/projects/{project.slug}/exports/{export.pk}/").json()
    assert detail["sha256"] == export.sha256
    download = client.get(detail["download_url"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == export.sha256
    assert b'"chosen": [{"content": "Yes.", "role": "assistant"}]' in content
    assert "attachment" in download["Content-Disposition"]
    assert [row["id"] for row in client.get(f"/api/projects/{project.slug}/exports/").json()] == [export.pk]


def test_running_an_export_twice_does_the_work_once(
    project, researcher, judged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(researcher).post(
            f"/api/projects/{project.slug}/exports/", {"format": "votes"}, format="json"
        )
    first = export_run(export_id=response.json()["id"])
    second = export_run(export_id=first.pk)
    assert (second.state, second.sha256, second.finished_at) == (
        "succeeded",
        first.sha256,
        first.finished_at,
    )


def test_an_unfinished_export_cannot_be_downloaded(
    project, researcher, judged, django_capture_on_commit_callbacks
):
    client = api_as(researcher)
    with django_capture_on_commit_callbacks(execute=False):
        export_id = client.post(
            f"/api/projects/{project.slug}/exports/", {"format": "csv"}, format="json"
        ).json()["id"]
    response = client.get(f"/api/projects/{project.slug}/exports/{export_id}/download/")
    assert response.status_code == 409


def test_it_refuses_bad_options_with_the_field_named(project, researcher):
    client = api_as(researcher)
    response = client.post(f"/api/projects/{project.slug}/exports/", {"format": "docx"}, format="json")
    assert response.status_code == 400
    assert "format" in response.json()["errors"]
    response = client.post(f"/api/projects/{project.slug}/exports/", [1, 2], format="json")
    assert response.status_code == 400
    assert not Export.objects.exists()


def test_annotators_may_not_export_and_outsiders_do_not_see_the_project(project, annotator, outsider):
    url = f"/api/projects/{project.slug}/exports/"
    assert api_as(annotator).post(url, {"format": "trl"}, format="json").status_code == 403
    assert api_as(outsider).get(url).status_code == 404


def test_another_projects_export_is_a_404(project, researcher):
    from tests.factories import ProjectFactory

    other = Export.objects.create(project=ProjectFactory(), format="trl", state="succeeded", path="x")
    client = api_as(researcher)
    assert client.get(f"/api/projects/{project.slug}/exports/{other.pk}/").status_code == 404
    assert client.get(f"/api/projects/{project.slug}/exports/{other.pk}/download/").status_code == 404


def test_files_outside_media_are_never_served(project, researcher, tmp_path):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("{}\n")
    client = api_as(researcher)
    for path in (str(outside), "../elsewhere.jsonl"):
        export = Export.objects.create(project=project, format="trl", state="succeeded", path=path)
        assert client.get(f"/api/projects/{project.slug}/exports/{export.pk}/download/").status_code == 409
