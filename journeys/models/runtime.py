"""The journey runtime's durable state: everything a worker needs is in these rows, so a wait of
three days survives any number of worker restarts.

- ``Enrollment``: one entry of an account into a journey (a re-entry is a new row).
- ``PersonState``: a token moving through the graph. One per person of the account, plus one
  *account token* (``person`` null) so account-level nodes run even for an account without people.
- ``NodeVisit``: one row per token per node visited; node counters and the CSV export derive
  from it (exact by construction: a visit is opened and closed in the transaction that moves the token).
- ``SideEffect``: the idempotency ledger. Its unique ``key`` (version, node, person, account)
  makes a retried action a no-op.
- ``EmailSend``: one email sent by a journey, with its tracking state.
- ``JourneyEvent``: an append-only log of what the runtime did, for debugging.
- ``JourneyEntryCursor``: how far the journey has read its audience's membership history.
"""

from django.db import models

from cdp.models import SandboxScopedModel


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    FINISHED = "finished", "Finished"
    EXITED = "exited", "Exited"


class TokenState(models.TextChoices):
    READY = "ready", "Ready"  # to be processed at its node by the next advance
    WAITING = "waiting", "Waiting"  # at a wait or listen node until wake_at or an event
    FINISHED = "finished", "Finished"  # reached an end node
    EXITED = "exited", "Exited"  # left: no split path matched, or the journey was aborted


class SideEffectStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # recorded, not attempted yet
    PENDING = "pending", "Pending"  # claimed; doing it now (or the worker died while doing it)
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"  # not applicable (e.g. invalid stage transition, no email address)
    FAILED = "failed", "Failed"  # known not done; the next attempt tries again


class JourneyEntryCursor(SandboxScopedModel):
    journey = models.OneToOneField("journeys.Journey", on_delete=models.CASCADE, related_name="entry_cursor")
    last_change_id = models.BigIntegerField(default=0, help_text="AudienceMembershipChange id read up to.")
    updated_at = models.DateTimeField(auto_now=True)


class Enrollment(SandboxScopedModel):
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey("journeys.JourneyVersion", on_delete=models.CASCADE, related_name="enrollments")
    account = models.ForeignKey("cdp.Account", on_delete=models.CASCADE, related_name="+")
    entry_number = models.PositiveIntegerField(default=1, help_text="1 for the first entry, 2 for the first re-entry…")
    state = models.CharField(max_length=10, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    node = models.CharField(max_length=64, blank=True, help_text="The node the account's token is at.")
    entered_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # A lease, not a lock held in a transaction: side effects commit one by one inside it.
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "account", "entry_number"], name="enrollment_entry_unique")
        ]
        indexes = [models.Index(fields=["journey", "state"]), models.Index(fields=["journey", "account"])]


class PersonState(SandboxScopedModel):
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="tokens")
    person = models.ForeignKey("cdp.Person", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    node = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=TokenState.choices, default=TokenState.READY)
    entered_node_at = models.DateTimeField()
    wake_at = models.DateTimeField(null=True, blank=True, help_text="End of a wait, or a listen's timeout.")
    listen_for = models.JSONField(null=True, blank=True, help_text="The listen node's event spec while listening.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "person"], name="person_state_unique"),
            models.UniqueConstraint(
                fields=["enrollment"], condition=models.Q(person__isnull=True), name="one_account_token"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "wake_at"]),
            models.Index(fields=["enrollment", "state"]),
            models.Index(fields=["person", "state"]),
        ]


class NodeVisit(SandboxScopedModel):
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="visits")
    token = models.ForeignKey(PersonState, on_delete=models.CASCADE, related_name="visits")
    person_id = models.BigIntegerField(null=True, blank=True)
    node = models.CharField(max_length=64)
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=64, blank=True, help_text="next, path id, timeout, event, finished, exited.")

    class Meta:
        ordering = ["entered_at", "id"]
        indexes = [models.Index(fields=["journey", "node"]), models.Index(fields=["token", "left_at"])]


class SideEffect(SandboxScopedModel):
    key = models.CharField(max_length=200, unique=True)
    version = models.ForeignKey("journeys.JourneyVersion", on_delete=models.CASCADE, related_name="+")
    node = models.CharField(max_length=64)
    person_id = models.BigIntegerField(null=True, blank=True)
    account_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=SideEffectStatus.choices, default=SideEffectStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts of an at-most-once effect.")
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "node"])]


class EmailSend(SandboxScopedModel):
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="email_sends")
    version = models.ForeignKey("journeys.JourneyVersion", on_delete=models.CASCADE, related_name="+")
    side_effect = models.OneToOneField(SideEffect, on_delete=models.CASCADE, related_name="email_send")
    email_asset = models.ForeignKey("journeys.EmailAsset", null=True, on_delete=models.SET_NULL, related_name="+")
    node = models.CharField(max_length=64)
    person = models.ForeignKey("cdp.Person", on_delete=models.CASCADE, related_name="+")
    account_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.CharField(max_length=255, unique=True)
    to_email = models.CharField(max_length=254)
    sent_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["journey", "node"])]


class JourneyEvent(SandboxScopedModel):
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="runtime_events")
    enrollment = models.ForeignKey(Enrollment, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    node = models.CharField(max_length=64, blank=True)
    person_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=40)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["journey", "at"])]
