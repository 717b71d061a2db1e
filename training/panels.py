"""Training's panel on the researchers' dashboard (``annotation.dashboard_panels``)."""

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from annotation.models import Project
from annotation.quality.charts import line_chart
from training.selectors import reward_model_runs


def reward_model_runs_panel(request: HttpRequest, project: Project) -> SafeString:
    """Held-out pairwise accuracy of the finished reward-model runs, as a chart and a list."""
    runs = reward_model_runs(project=project)
    points = [(row["run"].name or f"run {row['run'].pk}", row["accuracy"]) for row in runs]
    chart = line_chart(
        [(label, accuracy) for label, accuracy in points if accuracy is not None],
        title="Reward-model accuracy by run",
    )
    return render_to_string("training/_dashboard_runs.html", {"runs": runs, "chart": chart}, request=request)
