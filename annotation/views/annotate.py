"""The annotator page: a server-rendered shell; ``static/js/annotate.js`` drives it through the API.

The page itself carries the label scheme and the API URLs. Comparisons are fetched one at a time
(``POST /api/projects/{slug}/next/``), so the next item appears without a page reload and the
page never learns response ids, model names or sources.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.models import RationalePolicy
from annotation.rendering import render_markdown
from annotation.selectors import project_progress, project_with_role

# Strength keys, weakest first; Shift+1..9 also works for scales longer than this.
STRENGTH_KEYS = "qwe"


@login_required
@ensure_csrf_cookie
def annotate(request: HttpRequest, slug: str) -> HttpResponse:
    project, _role = project_with_role(user=request.user, slug=slug)
    strengths = [
        {"index": i, "label": label, "key": STRENGTH_KEYS[i].upper() if i < len(STRENGTH_KEYS) else ""}
        for i, label in enumerate(project.strength_scale or [])
    ]
    config = {
        "nextUrl": reverse("api-project-next", kwargs={"slug": project.slug}),
        # The assignment id replaces the 0 on the client.
        "judgementUrl": reverse("api-judgement", kwargs={"assignment_id": 0}),
        "skipUrl": reverse("api-skip", kwargs={"assignment_id": 0}),
        "allowTie": project.allow_tie,
        "allowBothBad": project.allow_both_bad,
        "strengths": strengths,
        "rationale": project.rationale,
    }
    context = {
        "project": project,
        "config": config,
        "strengths": strengths,
        "rationale_required": project.rationale == RationalePolicy.REQUIRED,
        "rationale_off": project.rationale == RationalePolicy.OFF,
        "progress": project_progress(project=project, annotator=request.user),
        "guidelines_html": render_markdown(project.guidelines),
    }
    return render(request, "annotation/annotate.html", context)
