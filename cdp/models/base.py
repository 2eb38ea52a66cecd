from django.db import models


class SandboxQuerySet(models.QuerySet):
    def for_sandbox(self, sandbox):
        return self.filter(sandbox=sandbox)


class SandboxScopedModel(models.Model):
    """Base of every row that belongs to a sandbox (profiles, audiences, journeys, dataflows…).

    Query through ``Model.objects.for_sandbox(sandbox)``; API and UI base views do it for you.
    Resetting a sandbox deletes every row of every subclass (``cdp.services.reset_sandbox``).
    """

    sandbox = models.ForeignKey("cdp.Sandbox", on_delete=models.CASCADE, related_name="+")

    objects = SandboxQuerySet.as_manager()

    class Meta:
        abstract = True
