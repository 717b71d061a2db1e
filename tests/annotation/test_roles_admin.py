"""Django admin works for every registered model: list, add and change pages open for a superuser."""

import pytest
from django.contrib import admin
from django.urls import reverse

from annotation.services.judgements import judgement_submit
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def admin_client(client, project, annotator):
    # One of everything the queue makes, so change lists render real rows.
    ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown="left",
        strength=0,
        rationale="",
        duration_ms=1,
    )
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_admin_pages_open_for_every_model(admin_client, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    if admin.site._registry[model].has_add_permission(changelist.wsgi_request):
        assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 200
    first = model._default_manager.order_by("pk").first()
    if first is not None:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
        assert admin_client.get(url).status_code == 200


def test_annotators_cannot_open_the_admin(client, annotator):
    client.force_login(annotator)
    response = client.get(reverse("admin:annotation_comparison_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
