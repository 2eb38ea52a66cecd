from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self):
        from . import receivers, runtime_tasks  # noqa: F401  (connect the signal receivers)
