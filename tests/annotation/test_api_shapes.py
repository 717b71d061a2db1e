"""The export and quality answers have the fields the schema gives them; the payloads are built
as dicts (``export_payload``, ``project_quality_report``), the serializers describe them."""

import pytest
from rest_framework.test import APIClient

from annotation.api.exports import ExportSerializer
from annotation.api.quality import QualityReportSerializer

pytestmark = pytest.mark.django_db


def test_export_and_quality_answers_have_the_fields_of_their_schema(project, researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    base = f"/api/projects/{project.slug}"

    queued = client.post(f"{base}/exports/", {"format": "votes"}, format="json")
    assert queued.status_code == 202, queued.json()
    assert set(queued.json()) == set(ExportSerializer().fields)
    assert set(client.get(f"{base}/exports/").json()[0]) == set(ExportSerializer().fields)
    assert set(client.get(f"{base}/quality/").json()) == set(QualityReportSerializer().fields)
