"""Pages about projects: the home page (my projects), one project's page and its guidelines.

Every lookup goes through ``annotation.selectors`` so another project's page is a 404.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.rendering import render_markdown
from annotation.selectors import (
    MANAGERS,
    project_progress,
    project_stats,
    project_with_role,
    projects_with_roles,
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    rows = [
        {
            "project": project,
            "role": role,
            "progress": project_progress(project=project, annotator=request.user),
        }
        for project, role in projects_with_roles(user=request.user)
    ]
    return render(request, "home.html", {"rows": rows})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_with_role(user=request.user, slug=slug)
    is_manager = role in MANAGERS
    context = {
        "project": project,
        "role": role,
        "is_manager": is_manager,
        "progress": project_progress(project=project, annotator=request.user),
        "stats": project_stats(project=project) if is_manager else None,
    }
    return render(request, "annotation/project_detail.html", context)


@login_required
def project_guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    project, _role = project_with_role(user=request.user, slug=slug)
    return render(
        request,
        "annotation/guidelines.html",
        {"project": project, "guidelines_html": render_markdown(project.guidelines)},
    )
