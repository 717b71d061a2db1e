from django.urls import path

from training import views

urlpatterns = [
    path("<slug:slug>/runs/", views.run_list, name="training-runs"),
    path("<slug:slug>/runs/start/", views.run_start, name="training-run-start"),
    path("<slug:slug>/loop/start/", views.closed_loop_start_view, name="training-loop-start"),
    path("<slug:slug>/runs/compare/", views.run_compare, name="training-run-compare"),
    path("<slug:slug>/runs/<int:run_id>/", views.run_detail, name="training-run"),
    path("<slug:slug>/runs/<int:run_id>/cancel/", views.run_cancel_view, name="training-run-cancel"),
    path("<slug:slug>/versions/", views.version_register, name="training-version-register"),
    path(
        "<slug:slug>/versions/<int:version_id>/promote/",
        views.version_promote_view,
        name="training-version-promote",
    ),
    path("<slug:slug>/queue-order/", views.queue_order_view, name="training-queue-order"),
    path("<slug:slug>/leaderboard/", views.leaderboard_view, name="training-leaderboard"),
]
