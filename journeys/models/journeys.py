"""Account journeys as authored: the journey (lifecycle, dates, re-entry), its published versions
(frozen graph documents, see journeys/graph.py for the format), the campaign plan each published
version converts to, and the email assets that "send email" actions reference.

The journey's working graph lives on ``Journey.graph`` while it is a draft; publishing freezes a
copy into a new ``JourneyVersion`` (``Journey.current_version``), which the runtime executes.
"""

from django.conf import settings
from django.db import models

from cdp.models import SandboxScopedModel


class JourneyState(models.TextChoices):
    DRAFT = "draft", "Draft"
    VALIDATED = "validated", "Validated"
    LIVE = "live", "Live"
    CLOSED = "closed", "Closed to new entries"
    FINISHED = "finished", "Finished"
    ABORTED = "aborted", "Aborted"


# The graph may only be edited in these states; live journeys are duplicated instead.
EDITABLE_STATES = (JourneyState.DRAFT, JourneyState.VALIDATED)
# Accounts keep moving through these (closed only stops new entries).
RUNNING_STATES = (JourneyState.LIVE, JourneyState.CLOSED)


class Journey(SandboxScopedModel):
    dashboard_label = "Journeys"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    audience = models.ForeignKey(
        "cdp.Audience", null=True, blank=True, on_delete=models.SET_NULL, related_name="journeys",
        help_text="The account audience whose accounts enter the journey (the start node's audience).",
    )  # fmt: skip
    state = models.CharField(max_length=12, choices=JourneyState.choices, default=JourneyState.DRAFT)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(help_text="Required; at most three years after the start.")
    allow_reentry = models.BooleanField(default=False)
    reentry_interval = models.DurationField(
        null=True, blank=True, help_text="With re-entry: the least time between two entries of an account."
    )
    graph = models.JSONField(default=dict, blank=True, help_text="The working graph document (drafts).")
    current_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    duplicated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When it finished or was aborted.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="journey_name_unique_in_sandbox")]
        indexes = [models.Index(fields=["sandbox", "state"])]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_STATES


class JourneyVersion(SandboxScopedModel):
    """A published, frozen graph. Never edited after it is created."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["journey", "number"]
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journey_version_number_unique")]

    def __str__(self):
        return f"{self.journey} v{self.number}"


class CampaignPlan(SandboxScopedModel):
    """What a published version converts to: Marketo-shaped campaigns (one per node) and the
    account/people segments their smart lists use."""

    version = models.OneToOneField(JourneyVersion, on_delete=models.CASCADE, related_name="plan")
    segments = models.JSONField(default=list, help_text="[{id, name, subject, node, path, condition}]")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Plan of {self.version}"


class PlannedCampaign(SandboxScopedModel):
    plan = models.ForeignKey(CampaignPlan, on_delete=models.CASCADE, related_name="campaigns")
    position = models.PositiveIntegerField()
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=20)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, help_text="trigger (reacts to events) or batch (runs on a schedule).")
    smart_list = models.JSONField(help_text="{triggers: […], filters: […], filter_logic}")
    flow = models.JSONField(help_text="[steps]")
    schedule = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["plan", "position"]
        constraints = [models.UniqueConstraint(fields=["plan", "node_id"], name="planned_campaign_node_unique")]

    def __str__(self):
        return self.name


class EmailAsset(SandboxScopedModel):
    """An email a journey sends. Subject and bodies may hold personalisation tokens such as
    ``{{person.first_name}}`` (see journeys.services.emails)."""

    dashboard_label = "Emails"

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=255)
    from_name = models.CharField(max_length=120, blank=True)
    from_email = models.EmailField(blank=True, help_text="Empty: the site's DEFAULT_FROM_EMAIL.")
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True, help_text="Empty: derived from the HTML body.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="email_asset_name_unique_in_sandbox")]

    def __str__(self):
        return self.name
