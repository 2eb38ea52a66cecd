from django.db import models


class RoleWeight(models.IntegerChoices):
    TRIVIAL = 20, "Trivial"
    MINOR = 40, "Minor"
    NORMAL = 60, "Normal"
    IMPORTANT = 80, "Important"
    VITAL = 100, "Vital"


class TemplateStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"


class StagesModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class StageKind(models.TextChoices):
    ENTRY = "entry", "Entry"
    INTERMEDIATE = "intermediate", "Intermediate"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class BuyingGroupStatus(models.TextChoices):
    """``in_progress``/``full`` follow completeness (full = every required role filled);
    ``complete`` (the buying decision is done) and ``inactive`` are set by people, journeys, or the
    account leaving the source audience."""

    IN_PROGRESS = "in_progress", "In progress"
    FULL = "full", "Full"
    COMPLETE = "complete", "Complete"
    INACTIVE = "inactive", "Inactive"


class AssignedHow(models.TextChoices):
    AUTO = "auto", "Automatic"
    MANUAL = "manual", "Manual"


class BuildStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# The six roles every sandbox starts with; custom roles come on top, up to MAX_ROLES in all.
DEFAULT_ROLES = (
    "Decision Maker",
    "Influencer",
    "Practitioner",
    "Executive Steering Committee",
    "Champion",
    "Other",
)
MAX_ROLES = 20
