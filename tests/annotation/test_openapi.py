"""The OpenAPI schema is served, valid, lists every endpoint, and generates without warnings."""

import io

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db]

ENDPOINTS = {
    "/api/auth/token/": {"post"},
    "/api/projects/": {"get"},
    "/api/projects/{slug}/": {"get"},
    "/api/projects/{slug}/next/": {"post"},
    "/api/projects/{slug}/progress/": {"get"},
    "/api/projects/{slug}/stats/": {"get"},
    "/api/projects/{slug}/comparisons/": {"get"},
    "/api/projects/{slug}/members/": {"get", "post"},
    "/api/projects/{slug}/members/{username}/": {"delete"},
    "/api/assignments/{assignment_id}/judgement/": {"post"},
    "/api/assignments/{assignment_id}/skip/": {"post"},
}


def test_the_schema_is_openapi_3_and_lists_the_endpoints(annotator):
    client = APIClient()
    client.force_authenticate(annotator)

    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    for path, methods in ENDPOINTS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_the_judgement_endpoint_documents_its_body_and_answers(annotator):
    client = APIClient()
    client.force_authenticate(annotator)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"]["/api/assignments/{assignment_id}/judgement/"]["post"]

    assert {"200", "201", "400", "404", "409"} <= set(operation["responses"])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert body["required"] == ["choice"]
    assert schema["components"]["schemas"]["ShownChoiceEnum"]["enum"] == ["left", "right", "tie", "both_bad"]


def test_the_schema_generates_without_warnings(tmp_path):
    # --fail-on-warn turns any view drf-spectacular cannot describe into an error; show which.
    out = tmp_path / "schema.yaml"
    stderr = io.StringIO()
    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=stderr)
    except Exception as error:  # the message and the warnings are the point
        pytest.fail(f"schema generation failed: {error}\n{stderr.getvalue()}")
    assert out.read_text().startswith("openapi: 3.")
