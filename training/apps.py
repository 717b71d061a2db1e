from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotation.dashboard_panels import dashboard_panel_register
        from training.panels import reward_model_runs_panel

        dashboard_panel_register(reward_model_runs_panel)
