from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every Django process (web, shell, commands, tests) creates our Celery app as it starts,
        # so ``@shared_task``s bind to it and send to the configured broker, not Celery's default.
        # It lives here rather than in ``alignweb/__init__.py`` so that importing the package
        # (as the ML core does, for ``alignweb.conversations``) loads neither Celery nor Django.
        import alignweb.celery  # noqa: F401
