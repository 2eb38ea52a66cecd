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


class MergePolicy(models.TextChoices):
    TIMESTAMP = "timestamp", "Timestamp-ordered (latest value wins per field)"
    DATASET_PRECEDENCE = "dataset_precedence", "Dataset precedence"


class IdentityNamespace(models.TextChoices):
    """Standard identity namespaces. Custom ones are written ``custom:<code>``."""

    ECID = "ecid", "ECID"
    EMAIL = "email", "Email"
    MARKETO_LEAD_ID = "marketo_lead_id", "Marketo lead id"
    SFDC_CONTACT_ID = "sfdc_contact_id", "Salesforce contact id"
    SFDC_LEAD_ID = "sfdc_lead_id", "Salesforce lead id"
    SFDC_ACCOUNT_ID = "sfdc_account_id", "Salesforce account id"
    CRM_ACCOUNT_ID = "crm_account_id", "CRM account id"
    DOMAIN = "domain", "Domain"


PERSON_NAMESPACES = (
    IdentityNamespace.ECID,
    IdentityNamespace.EMAIL,
    IdentityNamespace.MARKETO_LEAD_ID,
    IdentityNamespace.SFDC_CONTACT_ID,
    IdentityNamespace.SFDC_LEAD_ID,
)
# Accounts resolve by CRM id first, then domain: the order of this tuple.
ACCOUNT_NAMESPACES = (
    IdentityNamespace.CRM_ACCOUNT_ID,
    IdentityNamespace.SFDC_ACCOUNT_ID,
    IdentityNamespace.DOMAIN,
)
CUSTOM_NAMESPACE_PREFIX = "custom:"


class EventType(models.TextChoices):
    EMAIL_SENT = "email.sent", "Email sent"
    EMAIL_DELIVERED = "email.delivered", "Email delivered"
    EMAIL_OPENED = "email.opened", "Email opened"
    EMAIL_CLICKED = "email.clicked", "Email clicked"
    EMAIL_BOUNCED = "email.bounced", "Email bounced"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed", "Email unsubscribed"
    WEB_VISIT = "web.visit", "Web page visit"
    FORM_FILLED = "form.filled", "Form filled"
    INTERESTING_MOMENT = "interesting_moment", "Interesting moment"
    SCORE_CHANGED = "score.changed", "Score changed"
    LIST_ADDED = "list.added", "Added to list"
    LIST_REMOVED = "list.removed", "Removed from list"
    OPPORTUNITY_ADDED = "opportunity.added", "Added to opportunity"
    OPPORTUNITY_REMOVED = "opportunity.removed", "Removed from opportunity"
    LEAD_CREATED = "lead.created", "Lead created"
    LEAD_CONVERTED = "lead.converted", "Lead converted"
    EVENT_ATTENDED = "event.attended", "Event attended"
    # Any other type is accepted as a custom type if it starts with "custom."


class IngestionEntity(models.TextChoices):
    PERSON = "person", "People"
    ACCOUNT = "account", "Accounts"
    OPPORTUNITY = "opportunity", "Opportunities"
    OPPORTUNITY_PERSON = "opportunity_person", "Opportunity contact roles"
    EVENT = "event", "Experience events"
    LIST_MEMBER = "list_member", "Static list members"
    CAMPAIGN_MEMBER = "campaign_member", "Campaign members"


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AudienceKind(models.TextChoices):
    PERSON = "person", "Person audience"
    ACCOUNT = "account", "Account audience"


class EvaluationState(models.TextChoices):
    IDLE = "idle", "Up to date"
    QUEUED = "queued", "Queued"
    EVALUATING = "evaluating", "Evaluating"
    FAILED = "failed", "Failed"


class MembershipStatus(models.TextChoices):
    REALIZED = "realized", "Realized"
    EXITED = "exited", "Exited"
