"""The OpenAPI schema is served, valid, lists every API route with typed bodies, and generates
without warnings."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db]

SPECTACULAR_VIEWS = ("api-schema", "api-docs")  # the schema's own pages


def api_endpoints() -> dict[str, set[str]]:
    """Every API route the URL resolver knows, as OpenAPI paths with their HTTP methods: the list
    the schema is checked against, taken from the routes and not from the schema itself."""
    found: dict[str, set[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
                continue
            view = getattr(entry.callback, "cls", None)
            if not route.startswith("api/") or entry.name in SPECTACULAR_VIEWS or view is None:
                continue
            path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
            methods = {m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)}
            found.setdefault(path, set()).update(methods)

    walk(get_resolver().url_patterns, "")
    return found


def typed(schema: dict, components: dict) -> bool:
    """A body the schema describes: named properties, an array of such, or a scalar (a file is a
    binary string). ``{"type": "object"}`` alone (``OpenApiTypes.OBJECT``) or ``{}`` says nothing."""
    if "$ref" in schema:
        return typed(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for key in ("allOf", "oneOf", "anyOf"):
        if key in schema:
            return all(typed(part, components) for part in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return typed(schema.get("items", {}), components)
    if kind == "object":
        return bool(schema.get("properties"))
    return kind in ("string", "integer", "number", "boolean")


def untyped_bodies(schema: dict) -> list[str]:
    components = schema["components"]["schemas"]
    problems = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for media, body in operation.get("requestBody", {}).get("content", {}).items():
                if not typed(body.get("schema", {}), components):
                    problems.append(f"{where}: request body ({media}) is untyped")
            answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            if not answers:
                problems.append(f"{where}: no success response")
            for code, answer in answers.items():
                if code == "204":
                    continue
                if not answer.get("content"):
                    problems.append(f"{where}: {code} has no body schema")
                for media, body in answer.get("content", {}).items():
                    if not typed(body.get("schema", {}), components):
                        problems.append(f"{where}: {code} response ({media}) is untyped")
    return problems


def schema_json() -> dict:
    client = APIClient()
    client.force_authenticate(UserFactory())
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_and_lists_every_api_route():
    schema = schema_json()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    endpoints = api_endpoints()
    # The walk finds both apps' routes (a guard against a resolver walk that finds nothing).
    assert {"/api/projects/{slug}/next/", "/api/projects/{slug}/runs/", "/api/auth/token/"} <= set(endpoints)
    missing = [
        f"{method.upper()} {path}"
        for path, methods in sorted(endpoints.items())
        for method in sorted(methods - set(schema["paths"].get(path, {})))
    ]
    assert missing == []


def test_every_request_and_response_body_is_typed():
    assert untyped_bodies(schema_json()) == []


def test_an_untyped_body_is_named():
    schema = {
        "components": {"schemas": {"Run": {"type": "object", "properties": {"id": {"type": "integer"}}}}},
        "paths": {
            "/api/x/": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"202": {"content": {"application/json": {"schema": {"$ref": "#/c/Run"}}}}},
                },
                "get": {"responses": {"200": {"description": "no body"}}},
            }
        },
    }
    assert untyped_bodies(schema) == [
        "POST /api/x/: request body (application/json) is untyped",
        "GET /api/x/: 200 has no body schema",
    ]


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
