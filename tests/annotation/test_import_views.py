"""Importing through the upload page and the REST API: managers only, refusals explained."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Comparison, ImportBatch
from tests.factories import api_token_key

pytestmark = pytest.mark.django_db

GOOD = (
    b'{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n'
    b'{"prompt": "1+1?", "chosen": "2", "rejected": "3"}\n'
)
BAD = b'{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n{"prompt": "1+1?", "chosen": "2"}\n'


def upload(content: bytes, name: str = "prefs.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/jsonl")


# --- the upload page ------------------------------------------------------------------------


def test_a_researcher_sees_the_upload_form_with_every_format(client, project, researcher):
    client.force_login(researcher)
    html = client.get(reverse("project-import", args=[project.slug])).content.decode()
    assert 'enctype="multipart/form-data"' in html
    for name in ("hh", "trl", "responses", "prompts"):
        assert f'value="{name}"' in html


def test_a_researcher_imports_a_file_and_sees_the_counts(client, project, researcher):
    client.force_login(researcher)
    url = reverse("project-import", args=[project.slug])
    response = client.post(url, {"format": "trl", "file": upload(GOOD)}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    html = response.content.decode()
    assert (
        "Imported prefs.jsonl: 2 rows, 2 new prompts, 4 new responses, 2 new comparisons, 0 skipped." in html
    )
    assert Comparison.objects.filter(project=project).count() == 2
    assert ImportBatch.objects.get(project=project).created_by == researcher


def test_a_refused_file_shows_its_problems_and_imports_nothing(client, project, project_admin):
    client.force_login(project_admin)
    response = client.post(
        reverse("project-import", args=[project.slug]), {"format": "trl", "file": upload(BAD)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported." in html
    assert "line 2, rejected: missing" in html
    assert not Comparison.objects.filter(project=project).exists()


def test_the_form_requires_a_file(client, project, researcher):
    client.force_login(researcher)
    response = client.post(reverse("project-import", args=[project.slug]), {"format": "trl"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_annotators_and_outsiders_get_a_404(client, project, who, request):
    client.force_login(request.getfixturevalue(who))
    url = reverse("project-import", args=[project.slug])
    assert client.get(url).status_code == 404
    assert client.post(url, {"format": "trl", "file": upload(GOOD)}).status_code == 404
    assert not Comparison.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, project):
    response = client.get(reverse("project-import", args=[project.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --- the REST endpoint ----------------------------------------------------------------------


def api_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_key(user)}")
    return api


def test_the_api_imports_a_file_with_token_auth(project, researcher):
    url = f"/api/projects/{project.slug}/imports/"
    response = api_for(researcher).post(url, {"format": "trl", "file": upload(GOOD)}, format="multipart")
    assert response.status_code == 201
    body = response.json()
    assert body["rows"] == 2
    assert body["created"] == {"prompts": 2, "responses": 4, "comparisons": 2, "skipped": 0}
    assert body["created_by"] == "rita"
    assert body["filename"] == "prefs.jsonl"


def test_the_api_refuses_a_bad_file_with_lines_and_fields(project, researcher):
    url = f"/api/projects/{project.slug}/imports/"
    response = api_for(researcher).post(url, {"format": "trl", "file": upload(BAD)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["line 2, rejected: missing"]}
    assert response.json()["problems"] == [{"line": 2, "field": "rejected", "message": "missing"}]
    assert not Comparison.objects.filter(project=project).exists()


def test_the_api_refuses_an_unknown_format(project, researcher):
    url = f"/api/projects/{project.slug}/imports/"
    response = api_for(researcher).post(url, {"format": "csv", "file": upload(GOOD)}, format="multipart")
    assert response.status_code == 400
    assert "format" in response.json()["errors"]


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_the_api_is_a_404_for_annotators_and_outsiders(project, who, request):
    url = f"/api/projects/{project.slug}/imports/"
    api = api_for(request.getfixturevalue(who))
    assert api.post(url, {"format": "trl", "file": upload(GOOD)}, format="multipart").status_code == 404
    assert not Comparison.objects.exists()


def test_the_api_needs_authentication(client, project):
    response = client.post(f"/api/projects/{project.slug}/imports/", {"format": "trl", "file": upload(GOOD)})
    assert response.status_code in (401, 403)


def test_the_openapi_schema_describes_the_import_endpoint(client, researcher):
    client.force_login(researcher)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    operation = json.loads(schema)["paths"]["/api/projects/{slug}/imports/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"201", "400", "404"} <= set(operation["responses"])
