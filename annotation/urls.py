from django.urls import path
from django.views.generic import TemplateView

from annotation.views import dashboards, imports

urlpatterns = [
    path("projects/<slug:slug>/import/", imports.project_import, name="project-import"),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("projects/<slug:slug>/dashboard/", dashboards.project_dashboard, name="project-dashboard"),
    path("projects/<slug:slug>/dashboard/export/", dashboards.dashboard_export, name="project-dashboard-export"),
    path("projects/<slug:slug>/dashboard/gold/", dashboards.dashboard_gold, name="project-dashboard-gold"),
]
