"""Panels that other apps add to the researchers' dashboard.

The dashboard belongs to annotation, which never imports the apps built on it; an app that has
something to show there (training: reward-model accuracy over runs) registers a panel from its
``AppConfig.ready``, and the page renders every registered panel in order of registration.
"""

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString

from annotation.models import Project

# (request, project) -> the panel's HTML, already escaped (e.g. from ``render_to_string``).
DashboardPanel = Callable[[HttpRequest, Project], SafeString]

_panels: list[DashboardPanel] = []


def dashboard_panel_register(panel: DashboardPanel) -> None:
    """Add ``panel`` once (``ready`` may run more than once in tests)."""
    if panel not in _panels:
        _panels.append(panel)


def dashboard_panels_render(*, request: HttpRequest, project: Project) -> list[SafeString]:
    return [panel(request, project) for panel in _panels]
