from django.urls import path

from annotation.views import annotate, dashboards, imports, projects

urlpatterns = [
    path("projects/<slug:slug>/import/", imports.project_import, name="project-import"),
    path("", projects.home, name="home"),
    path("projects/<slug:slug>/", projects.project_detail, name="project"),
    path("projects/<slug:slug>/guidelines/", projects.project_guidelines, name="project-guidelines"),
    path("projects/<slug:slug>/annotate/", annotate.annotate, name="annotate"),
    path("projects/<slug:slug>/dashboard/", dashboards.project_dashboard, name="project-dashboard"),
    path(
        "projects/<slug:slug>/dashboard/export/", dashboards.dashboard_export, name="project-dashboard-export"
    ),
    path("projects/<slug:slug>/dashboard/gold/", dashboards.dashboard_gold, name="project-dashboard-gold"),
    path(
        "projects/<slug:slug>/dashboard/gold-settings/",
        dashboards.dashboard_gold_settings,
        name="project-dashboard-gold-settings",
    ),
]
