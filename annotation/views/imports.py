"""The upload page: researchers and admins import a file into their project.

The page is a plain form; the work is ``preferences_import``. A refused file re-renders the form
with the problems (400), a successful one redirects back with the batch's counts (post/redirect/get).
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.importers import FORMATS, format_choices
from annotation.selectors import MANAGERS, project_for_user
from annotation.services.imports import ImportRejected, preferences_import


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=format_choices)
    file = forms.FileField(help_text="JSON Lines (one object per line) or one JSON array, UTF-8.")


@login_required
def project_import(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
    problems, rejected, status = [], None, 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                batch = preferences_import(
                    project=project,
                    fmt=form.cleaned_data["format"],
                    file=upload,
                    filename=upload.name,
                    user=request.user,
                )
            except ImportRejected as error:
                rejected, problems, status = error, error.problems, 400
            else:
                counts = batch.created
                messages.success(
                    request,
                    f"Imported {batch.filename}: {batch.rows} rows, {counts['prompts']} new prompts, "
                    f"{counts['responses']} new responses, {counts['comparisons']} new comparisons, "
                    f"{counts['skipped']} skipped.",
                )
                return redirect("project-import", slug=project.slug)
        else:
            status = 400
    else:
        form = ImportForm()
    context = {
        "project": project,
        "form": form,
        "formats": [FORMATS[name] for name, _ in format_choices()],
        "rejected": rejected,
        "problems": problems,
        "max_bytes": settings.ALIGNWEB_IMPORT_MAX_BYTES,
        "batches": project.imports.select_related("created_by").order_by("-created_at")[:20],
    }
    return render(request, "annotation/import.html", context, status=status)
