import pytest
from django.http import Http404

from annotation.selectors import project_for_user, projects_for_user
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_members_see_their_project(project, annotator):
    assert project_for_user(user=annotator, slug=project.slug) == project


def test_an_outsider_gets_a_404(project, outsider):
    with pytest.raises(Http404):
        project_for_user(user=outsider, slug=project.slug)


def test_an_annotator_is_not_a_manager(project, annotator):
    with pytest.raises(Http404):
        project_for_user(user=annotator, slug=project.slug, roles={"researcher", "admin"})


def test_other_projects_are_invisible(project, annotator):
    ProjectFactory()
    assert list(projects_for_user(user=annotator)) == [project]


def test_the_project_and_role_lookup_loads_every_field_as_the_orm_does(project, annotator):
    from annotation.models import Project
    from annotation.selectors import project_with_role

    project.strength_scale = ["slight", "clear", "strong"]
    project.save()
    loaded, role = project_with_role(user=annotator, slug=project.slug)
    expected = Project.objects.get(pk=project.pk)
    assert role == "annotator"
    for field in Project._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
