from django.urls import path
from django.views.generic import TemplateView

from annotation.views import imports

urlpatterns = [
    path("projects/<slug:slug>/import/", imports.project_import, name="project-import"),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
]
