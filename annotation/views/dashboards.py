"""The researchers' dashboard: progress, agreement, gold accuracy, bias, exports and gold marking.

Researchers and admins only; everyone else gets a 404 (the page is not advertised to them).
The POST views are thin: validate, call one service, redirect back with a message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.dashboard_panels import dashboard_panels_render
from annotation.exporters import available_formats
from annotation.models import Choice, Comparison, Export
from annotation.parsing import form_checkbox
from annotation.quality.charts import bar_chart, line_chart
from annotation.quality.report import FAST_MS_DEFAULT, project_quality_report
from annotation.selectors import MANAGERS, project_for_user
from annotation.services.errors import ValidationFailed
from annotation.services.export_jobs import export_create
from annotation.services.exports import AGGREGATIONS, TIE_POLICIES, ExportOptions
from annotation.services.gold import comparison_gold_set, project_gold_settings_update
from annotation.views.refusals import refused_to

EXPORT_FORM_FIELDS = (
    "format",
    "aggregation",
    "ties",
    "date_from",
    "date_to",
    "annotators",
    "min_gold_accuracy",
    "min_agreement",
    "min_votes",
    "model_versions",
)
EXPORT_FORM_FLAGS = ("conversational", "include_imported", "pseudonymise", "exclude_flagged")


@login_required
def project_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
    report = project_quality_report(project=project, fast_ms=FAST_MS_DEFAULT)
    annotators = report["annotators"]
    charts = {
        "progress": line_chart(
            [(point["date"], point["cumulative"]) for point in report["progress"]],
            title="Judgements so far, by day",
        ),
        "kappa": bar_chart(
            [(row["username"], row["kappa_mean"]) for row in annotators],
            title="Mean Cohen's kappa with other annotators",
            minimum=-1.0,
        ),
        "gold": bar_chart(
            [(row["username"], row["gold_accuracy"]) for row in annotators],
            title="Gold accuracy",
            reference=project.gold_accuracy_threshold,
        ),
        "left": bar_chart(
            [(row["username"], row["left_rate"]) for row in annotators],
            title="Share of left choices (position bias)",
            reference=0.5,
        ),
    }
    context = {
        "project": project,
        "report": report,
        "charts": charts,
        "panels": dashboard_panels_render(request=request, project=project),
        "exports": Export.objects.filter(project=project).order_by("-id")[:20],
        "formats": available_formats(),
        "aggregations": AGGREGATIONS,
        "tie_policies": TIE_POLICIES,
        "choices": Choice.choices,
        "gold_comparisons": Comparison.objects.filter(project=project, is_gold=True).order_by("id")[:50],
    }
    return render(request, "annotation/dashboard.html", context)


@login_required
@require_POST
@refused_to("project-dashboard", "slug")
def dashboard_export(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
    data = {name: request.POST[name] for name in EXPORT_FORM_FIELDS if request.POST.get(name, "") != ""}
    # Checkboxes: an unticked one is not sent at all, so every flag is given explicitly.
    data.update({name: form_checkbox(request.POST, name) for name in EXPORT_FORM_FLAGS})
    options = ExportOptions.from_dict(data)
    export = export_create(project=project, options=options, user=request.user)
    messages.success(request, f"Export {export.pk} ({options.format}) is queued.")
    return redirect("project-dashboard", slug=project.slug)


@login_required
@require_POST
@refused_to("project-dashboard", "slug")
def dashboard_gold(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
    raw_id = request.POST.get("comparison", "")
    if not raw_id.isdigit():
        raise ValidationFailed("give the comparison's number.", field="comparison")
    comparison = get_object_or_404(Comparison, project=project, pk=int(raw_id))
    gold_choice = request.POST.get("gold_choice", "")
    comparison_gold_set(comparison=comparison, gold_choice=gold_choice)
    if gold_choice:
        messages.success(request, f"Comparison {comparison.pk} is gold with answer {gold_choice}.")
    else:
        messages.success(request, f"Comparison {comparison.pk} is no longer gold.")
    return redirect("project-dashboard", slug=project.slug)


@login_required
@require_POST
@refused_to("project-dashboard", "slug")
def dashboard_gold_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
    project_gold_settings_update(
        project=project,
        gold_rate=request.POST.get("gold_rate"),
        gold_accuracy_threshold=request.POST.get("gold_accuracy_threshold"),
    )
    messages.success(request, "Gold settings saved.")
    return redirect("project-dashboard", slug=project.slug)
