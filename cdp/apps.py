from django.apps import AppConfig


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = "Experience Platform"

    def ready(self):
        from cdp import receivers  # noqa: F401  (connects the signal receivers)
