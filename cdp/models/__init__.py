from .audiences import Audience, AudienceEvaluation, AudienceMember, AudienceMembershipChange, PendingProfileChange
from .base import SandboxQuerySet, SandboxScopedModel
from .ingestion import FieldMapping, IdempotencyKey, IngestionBatch, RejectedRecord
from .profiles import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    Identity,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
    ProfileMerge,
)
from .tenancy import Membership, Organization, Sandbox, SandboxRole
from .tokens import ApiToken

__all__ = [
    "Account",
    "Audience",
    "AudienceEvaluation",
    "AudienceMember",
    "AudienceMembershipChange",
    "AccountPerson",
    "ApiToken",
    "Campaign",
    "CampaignMember",
    "ExperienceEvent",
    "FieldMapping",
    "IdempotencyKey",
    "Identity",
    "IngestionBatch",
    "ListMember",
    "MarketingList",
    "Membership",
    "Opportunity",
    "OpportunityPerson",
    "Organization",
    "PendingProfileChange",
    "Person",
    "ProfileMerge",
    "RejectedRecord",
    "Sandbox",
    "SandboxQuerySet",
    "SandboxRole",
    "SandboxScopedModel",
]
