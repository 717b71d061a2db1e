from django.urls import path

from annotation.api import exports, imports, members, projects, quality, queue, tokens

urlpatterns: list = [
    path("auth/token/", tokens.TokenApi.as_view(), name="api-auth-token"),
    path("auth/token/rotate/", tokens.TokenRotateApi.as_view(), name="api-auth-token-rotate"),
    path("projects/", projects.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<slug:slug>/next/", queue.NextApi.as_view(), name="api-project-next"),
    path("projects/<slug:slug>/progress/", projects.ProgressApi.as_view(), name="api-project-progress"),
    path("projects/<slug:slug>/stats/", projects.StatsApi.as_view(), name="api-project-stats"),
    path(
        "projects/<slug:slug>/comparisons/",
        projects.ComparisonListApi.as_view(),
        name="api-project-comparisons",
    ),
    path("projects/<slug:slug>/members/", members.MemberListApi.as_view(), name="api-project-members"),
    path(
        "projects/<slug:slug>/members/<str:username>/",
        members.MemberDetailApi.as_view(),
        name="api-project-member",
    ),
    path("assignments/<int:assignment_id>/judgement/", queue.JudgementApi.as_view(), name="api-judgement"),
    path("assignments/<int:assignment_id>/skip/", queue.SkipApi.as_view(), name="api-skip"),
    path("projects/<slug:slug>/imports/", imports.ProjectImportApi.as_view(), name="api-project-imports"),
    path("projects/<slug:slug>/exports/", exports.ExportListApi.as_view(), name="api-project-exports"),
    path(
        "projects/<slug:slug>/exports/<int:export_id>/",
        exports.ExportDetailApi.as_view(),
        name="api-project-export",
    ),
    path(
        "projects/<slug:slug>/exports/<int:export_id>/download/",
        exports.ExportDownloadApi.as_view(),
        name="api-project-export-download",
    ),
    path("projects/<slug:slug>/quality/", quality.QualityApi.as_view(), name="api-project-quality"),
    path(
        "projects/<slug:slug>/comparisons/<int:comparison_id>/gold/",
        quality.GoldApi.as_view(),
        name="api-comparison-gold",
    ),
]
