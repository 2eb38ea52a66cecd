from django.db import models


class SandboxType(models.TextChoices):
    PRODUCTION = "production", "Production"
    DEVELOPMENT = "development", "Development"


class Role(models.TextChoices):
    """A user's role in one sandbox. Each role can do everything the roles before it can."""

    VIEWER = "viewer", "Viewer"
    MARKETER = "marketer", "Marketer"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, required: "Role") -> bool:
        return self.rank >= Role(required).rank
