"""The profile store's REST API, all under /api/sandboxes/{sandbox_id}/:

- accounts/, people/, opportunities/, events/ — read-only lists (paginated, filtered) and details;
- profiles/lookup/?namespace=…&value=… — the person or account holding one identity;
- mappings/ — saved field mappings for file ingestion (CRUD), mappings/targets/?entity=…;
- ingestion-batches/ — file uploads (multipart) and the daily streaming logs, their rejections
  and the downloadable error report;
- stream/{entity}/ — streaming ingestion of one record or a list, with an Idempotency-Key.

Any role reads; marketers write. Views validate and delegate to ``cdp.services.ingestion`` (writes)
and ``cdp.services.profile_queries`` (reads); every queryset is scoped to the URL's sandbox.
"""

import functools

from django.http import FileResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, filters, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.metadata import SimpleMetadata
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from cdp.api.base import NotOffered, SandboxScopedViewSet
from cdp.api.serializers import ERROR_400, ERROR_403, ERROR_404
from cdp.choices import IngestionEntity
from cdp.exceptions import RuleViolation
from cdp.filtersets_profiles import (
    AccountFilterSet,
    EventFilterSet,
    FieldMappingFilterSet,
    IngestionBatchFilterSet,
    OpportunityFilterSet,
    PersonFilterSet,
    RejectedRecordFilterSet,
)
from cdp.models import (
    Account,
    AccountPerson,
    ExperienceEvent,
    FieldMapping,
    Identity,
    IngestionBatch,
    Opportunity,
    Person,
    RejectedRecord,
)
from cdp.schema import KEY_TARGETS, REQUIRED_TARGETS, target_catalog
from cdp.services import profile_queries as q
from cdp.services.ingestion import ingest_stream, start_file_ingestion, validate_mapping

# Rows shown inline on a detail answer; the full lists are paginated endpoints (see each field).
DETAIL_ROWS = 100
RECENT_EVENTS = 20


def register(router, sandbox_router):
    sandbox_router.register("accounts", AccountViewSet, basename="account")
    sandbox_router.register("people", PersonViewSet, basename="person")
    sandbox_router.register("opportunities", OpportunityViewSet, basename="opportunity")
    sandbox_router.register("events", EventViewSet, basename="event")
    sandbox_router.register("profiles", ProfileLookupViewSet, basename="profile")
    sandbox_router.register("mappings", FieldMappingViewSet, basename="mapping")
    sandbox_router.register("ingestion-batches", IngestionBatchViewSet, basename="ingestion-batch")
    sandbox_router.register(r"stream/(?P<entity>[a-z_]+)", StreamViewSet, basename="stream")


# ---------------------------------------------------------------------------------- base classes
class SandboxFilterBackend(DjangoFilterBackend):
    """django-filter, with the view's sandbox handed to the filterset (identity search uses it)."""

    def get_filterset_kwargs(self, request, queryset, view):
        return {**super().get_filterset_kwargs(request, queryset, view), "sandbox": getattr(view, "sandbox", None)}


class _ReadOnlySandboxViewSet(SandboxScopedViewSet):
    create = update = partial_update = destroy = NotOffered()
    filter_backends = [SandboxFilterBackend, filters.OrderingFilter]
    detail_serializer_class = None

    def get_serializer_class(self):
        if self.action == "retrieve" and self.detail_serializer_class is not None:
            return self.detail_serializer_class
        return self.serializer_class


# ----------------------------------------------------------------------------------- serializers
class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["namespace", "value", "dataset", "created_at"]


class AccountRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "name", "domain"]


class PersonRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "first_name", "last_name", "email", "job_title"]


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExperienceEvent
        fields = ["id", "type", "occurred_at", "person", "account", "properties", "external_id", "dataset", "ingested_at"]


class PersonAccountSerializer(serializers.ModelSerializer):
    """An account the person belongs to, with the person's role there."""

    id = serializers.IntegerField(source="account.id", read_only=True)
    name = serializers.CharField(source="account.name", read_only=True)
    domain = serializers.CharField(source="account.domain", read_only=True)

    class Meta:
        model = AccountPerson
        fields = ["id", "name", "domain", "role", "is_primary", "is_active"]


PERSON_FIELDS = [
    "id", "first_name", "last_name", "email", "job_title", "job_level", "department", "country", "city", "phone",
    "lead_score", "lead_source", "lead_status", "is_unsubscribed", "attributes", "created_at", "updated_at",
]  # fmt: skip


class PersonSerializer(serializers.ModelSerializer):
    accounts = PersonAccountSerializer(source="account_relations", many=True, read_only=True)

    class Meta:
        model = Person
        fields = [*PERSON_FIELDS, "accounts"]


class PersonOpportunitySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="opportunity.id")
    name = serializers.CharField(source="opportunity.name")
    stage = serializers.CharField(source="opportunity.stage")
    amount = serializers.DecimalField(source="opportunity.amount", max_digits=18, decimal_places=2, allow_null=True)
    is_closed = serializers.BooleanField(source="opportunity.is_closed")
    is_won = serializers.BooleanField(source="opportunity.is_won")
    account = serializers.IntegerField(source="opportunity.account_id", allow_null=True)
    role = serializers.CharField(help_text="The person's contact role on the opportunity.")
    is_primary = serializers.BooleanField()


class ListMembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="marketing_list.id")
    name = serializers.CharField(source="marketing_list.name")
    external_id = serializers.CharField(source="marketing_list.external_id")
    added_at = serializers.DateTimeField()


class CampaignMembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="campaign.id")
    name = serializers.CharField(source="campaign.name")
    external_id = serializers.CharField(source="campaign.external_id")
    status = serializers.CharField()
    has_responded = serializers.BooleanField()
    added_at = serializers.DateTimeField()


class MergeSerializer(serializers.Serializer):
    merged_person_id = serializers.IntegerField()
    merged_at = serializers.DateTimeField()
    dataset = serializers.CharField()
    linking_identities = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    merged_snapshot = serializers.JSONField(help_text="The merged person's fields and identities at merge time.")


class PersonDetailSerializer(PersonSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    opportunities = PersonOpportunitySerializer(source="opportunity_relations", many=True, read_only=True)
    lists = ListMembershipSerializer(source="list_memberships", many=True, read_only=True)
    campaigns = CampaignMembershipSerializer(source="campaign_memberships", many=True, read_only=True)
    merges = MergeSerializer(many=True, read_only=True)
    recent_events = serializers.SerializerMethodField(help_text=f"The {RECENT_EVENTS} latest events; all at events/?person=<id>.")

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields, "identities", "opportunities", "lists", "campaigns", "merges", "recent_events"]

    @extend_schema_field(EventSerializer(many=True))
    def get_recent_events(self, person):
        return EventSerializer(q.person_timeline(person)[:RECENT_EVENTS], many=True).data


ACCOUNT_FIELDS = [
    "id", "name", "domain", "industry", "employees", "annual_revenue", "country", "region", "sic_code", "website",
    "owner_email", "parent", "attributes", "created_at", "updated_at",
]  # fmt: skip


class AccountSerializer(serializers.ModelSerializer):
    parent = AccountRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Account
        fields = ACCOUNT_FIELDS


class AccountPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="person.id")
    first_name = serializers.CharField(source="person.first_name")
    last_name = serializers.CharField(source="person.last_name")
    email = serializers.CharField(source="person.email")
    job_title = serializers.CharField(source="person.job_title")
    role = serializers.CharField(help_text="The person's role at the account.")
    is_primary = serializers.BooleanField()
    is_active = serializers.BooleanField()


class OpportunitySummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Opportunity
        fields = ["id", "external_id", "name", "stage", "amount", "currency", "close_date", "is_closed", "is_won"]


class AccountDetailSerializer(AccountSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    children = serializers.SerializerMethodField(help_text=f"Up to {DETAIL_ROWS}; all at accounts/?parent=<id>.")
    people_count = serializers.SerializerMethodField()
    people = serializers.SerializerMethodField(help_text=f"Up to {DETAIL_ROWS}, primary first; all at people/?account=<id>.")
    opportunities = serializers.SerializerMethodField(help_text=f"Up to {DETAIL_ROWS}; all at opportunities/?account=<id>.")
    recent_events = serializers.SerializerMethodField(
        help_text=f"The {RECENT_EVENTS} latest events of the account and its people."
    )

    class Meta(AccountSerializer.Meta):
        fields = [*ACCOUNT_FIELDS, "identities", "children", "people_count", "people", "opportunities", "recent_events"]

    @extend_schema_field(AccountRefSerializer(many=True))
    def get_children(self, account):
        return AccountRefSerializer(q.account_children(account)[:DETAIL_ROWS], many=True).data

    def get_people_count(self, account) -> int:
        return q.account_people(account).count()

    @extend_schema_field(AccountPersonSerializer(many=True))
    def get_people(self, account):
        return AccountPersonSerializer(q.account_people(account)[:DETAIL_ROWS], many=True).data

    @extend_schema_field(OpportunitySummarySerializer(many=True))
    def get_opportunities(self, account):
        return OpportunitySummarySerializer(q.account_opportunities(account)[:DETAIL_ROWS], many=True).data

    @extend_schema_field(EventSerializer(many=True))
    def get_recent_events(self, account):
        return EventSerializer(q.account_timeline(account)[:RECENT_EVENTS], many=True).data


class OpportunitySerializer(serializers.ModelSerializer):
    account = AccountRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Opportunity
        fields = [
            "id", "external_id", "name", "stage", "amount", "currency", "close_date", "is_closed", "is_won",
            "account", "attributes", "created_at", "updated_at",
        ]  # fmt: skip


class OpportunityContactSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="person.id")
    first_name = serializers.CharField(source="person.first_name")
    last_name = serializers.CharField(source="person.last_name")
    email = serializers.CharField(source="person.email")
    role = serializers.CharField(help_text="Contact role, e.g. Decision Maker.")
    is_primary = serializers.BooleanField()


class OpportunityDetailSerializer(OpportunitySerializer):
    contacts = serializers.SerializerMethodField(help_text=f"People with a contact role (up to {DETAIL_ROWS}).")

    class Meta(OpportunitySerializer.Meta):
        fields = [*OpportunitySerializer.Meta.fields, "contacts"]

    @extend_schema_field(OpportunityContactSerializer(many=True))
    def get_contacts(self, opportunity):
        return OpportunityContactSerializer(q.opportunity_contacts(opportunity)[:DETAIL_ROWS], many=True).data


# ------------------------------------------------------------------------------- profile viewsets
@extend_schema_view(
    list=extend_schema(summary="Accounts", description="Search with `q` (name, domain or an exact identity value)."),
    retrieve=extend_schema(
        summary="One account",
        description="With identities, parent and children, people and their roles, opportunities and recent activity.",
        responses={200: AccountDetailSerializer, 404: ERROR_404},
    ),
)
class AccountViewSet(_ReadOnlySandboxViewSet):
    queryset = Account.objects.all()
    serializer_class = AccountSerializer
    detail_serializer_class = AccountDetailSerializer
    filterset_class = AccountFilterSet
    ordering_fields = ["name", "domain", "employees", "annual_revenue", "created_at", "updated_at"]

    def get_queryset(self):
        queryset = super().get_queryset().select_related("parent")
        if self.action == "retrieve":
            queryset = q.account_with_relations(queryset)
        return queryset


@extend_schema_view(
    list=extend_schema(
        summary="People",
        description="Search with `q` (name, email, or an exact identity value such as an ECID). Each person lists "
        "their accounts.",
    ),
    retrieve=extend_schema(
        summary="One person",
        description="With identities, accounts, opportunities and contact roles, list and campaign memberships, "
        "merge history and recent events.",
        responses={200: PersonDetailSerializer, 404: ERROR_404},
    ),
)
class PersonViewSet(_ReadOnlySandboxViewSet):
    queryset = Person.objects.all()
    serializer_class = PersonSerializer
    detail_serializer_class = PersonDetailSerializer
    filterset_class = PersonFilterSet
    ordering_fields = ["last_name", "first_name", "email", "lead_score", "created_at", "updated_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return q.person_with_relations(queryset)
        return q.people_for_listing(queryset)


@extend_schema_view(
    list=extend_schema(summary="Opportunities"),
    retrieve=extend_schema(
        summary="One opportunity",
        description="With its contacts and their roles.",
        responses={200: OpportunityDetailSerializer, 404: ERROR_404},
    ),
)
class OpportunityViewSet(_ReadOnlySandboxViewSet):
    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    detail_serializer_class = OpportunityDetailSerializer
    filterset_class = OpportunityFilterSet
    ordering_fields = ["name", "close_date", "amount", "stage", "created_at", "updated_at"]

    def get_queryset(self):
        return q.opportunities_for_listing(super().get_queryset())


@extend_schema_view(
    list=extend_schema(summary="Experience events", description="Newest first. Filter by person, account, type and time range."),
    retrieve=extend_schema(summary="One event", responses={200: EventSerializer, 404: ERROR_404}),
)
class EventViewSet(_ReadOnlySandboxViewSet):
    queryset = ExperienceEvent.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    ordering_fields = ["occurred_at", "ingested_at"]


# ----------------------------------------------------------------------------------------- lookup
class LookupPersonSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(source="identity_list", many=True, read_only=True)
    accounts = serializers.SerializerMethodField()

    class Meta:
        model = Person
        fields = [*PERSON_FIELDS, "identities", "accounts"]

    @extend_schema_field(AccountRefSerializer(many=True))
    def get_accounts(self, person):
        # Primary account first. Plain SQL: this runs on every person lookup, and compiling the ORM
        # query cost more CPU than running it.
        accounts = Account.objects.raw(
            f"SELECT a.id, a.name, a.domain FROM {Account._meta.db_table} a "
            f"JOIN {AccountPerson._meta.db_table} r ON r.account_id = a.id "
            "WHERE r.person_id = %s ORDER BY r.is_primary DESC, a.name",
            [person.pk],
        )
        return [_representation(AccountRefSerializer, account) for account in accounts]


class LookupAccountSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(source="identity_list", many=True, read_only=True)

    class Meta:
        model = Account
        fields = [*[f for f in ACCOUNT_FIELDS if f != "parent"], "parent_id", "identities"]


class LookupResultSerializer(serializers.Serializer):
    profile_type = serializers.ChoiceField(choices=["person", "account"], help_text="What holds the identity.")
    matched = IdentitySerializer(help_text="The identity found (value normalised as on ingest).")
    person = LookupPersonSerializer(allow_null=True, help_text="The person, when entity is person.")
    account = LookupAccountSerializer(allow_null=True, help_text="The account, when entity is account.")


class ProfileLookupViewSet(_ReadOnlySandboxViewSet):
    queryset = Identity.objects.all()
    list = retrieve = NotOffered()
    pagination_class = None
    filter_backends = []
    serializer_class = LookupResultSerializer

    @extend_schema(
        summary="Find the profile holding an identity",
        description="Answers the person or account whose identity graph holds `namespace:value` (profile_type "
        "says which, and that key holds it), with its identities, or 404. Values are normalised as on ingest "
        "(emails lower-cased, domains without scheme or www).",
        parameters=[
            OpenApiParameter("namespace", str, required=True, description="ecid, email, marketo_lead_id, "
                             "sfdc_contact_id, sfdc_lead_id, sfdc_account_id, crm_account_id, domain or custom:<code>."),
            OpenApiParameter("value", str, required=True, description="The identity value."),
        ],
        responses={200: LookupResultSerializer, 400: ERROR_400, 404: ERROR_404},
    )
    @action(detail=False, methods=["get"])
    def lookup(self, request, sandbox_id=None):
        namespace, value = request.query_params.get("namespace", ""), request.query_params.get("value")
        try:
            identity = q.lookup_identity(self.sandbox, namespace, value)
        except q.LookupRequestError as problem:
            raise exceptions.ValidationError({problem.field: [problem.message]}) from None
        if identity is None:
            raise exceptions.NotFound(f"No profile in this sandbox holds the identity {namespace}:{value}.")
        return Response(lookup_answer(identity))


def lookup_answer(identity) -> dict:
    """The lookup's answer body (LookupResultSerializer's shape) for an identity from ``lookup_identity``."""
    is_person = identity.person_id is not None
    return {
        "profile_type": "person" if is_person else "account",
        "matched": _representation(IdentitySerializer, identity),
        "person": _representation(LookupPersonSerializer, identity.person) if is_person else None,
        "account": None if is_person else _representation(LookupAccountSerializer, identity.account),
    }


@functools.cache
def _read_only_serializer(serializer_class):
    """One instance per class, its fields built once per process: building a ModelSerializer's fields
    costs more than rendering one object with them, and these serializers keep no per-call state."""
    return serializer_class()


def _representation(serializer_class, instance) -> dict:
    """What ``serializer_class(instance).data`` answers, without rebuilding the serializer's fields."""
    return _read_only_serializer(serializer_class).to_representation(instance)


# --------------------------------------------------------------------------------------- mappings
class FieldMappingSerializer(serializers.ModelSerializer):
    columns = serializers.JSONField(
        help_text='{"<target field>": "<source column>"}; identities as "identity.<namespace>", '
        'custom fields as "attributes.<name>" (events: "properties.<name>"). See mappings/targets/.'
    )

    class Meta:
        model = FieldMapping
        fields = ["id", "name", "entity", "columns", "created_at"]
        read_only_fields = ["created_at"]
        validators = []  # name uniqueness is checked per sandbox in validate()

    def validate(self, attrs):
        entity = attrs.get("entity", getattr(self.instance, "entity", None))
        columns = attrs.get("columns", getattr(self.instance, "columns", None))
        attrs["columns"] = validate_mapping(entity, columns)
        name = attrs.get("name", getattr(self.instance, "name", None))
        taken = FieldMapping.objects.for_sandbox(self.context["sandbox"]).filter(name=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError({"name": [f"A mapping named '{name}' already exists in this sandbox."]})
        return attrs


MAPPING_CHANGED = {200: FieldMappingSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}


class TargetCatalogSerializer(serializers.Serializer):
    entity = serializers.CharField()
    targets = serializers.ListField(child=serializers.CharField(), help_text="Every target field a mapping may name.")
    wildcards = serializers.ListField(
        child=serializers.CharField(), help_text="Prefixes for free-form keys, e.g. attributes.* (any name after the dot)."
    )
    required = serializers.ListField(child=serializers.CharField(), help_text="Targets every record must have.")


@extend_schema_view(
    list=extend_schema(summary="Field mappings"),
    retrieve=extend_schema(summary="One field mapping", responses={200: FieldMappingSerializer, 404: ERROR_404}),
    create=extend_schema(summary="Save a field mapping", responses={201: FieldMappingSerializer, 400: ERROR_400, 403: ERROR_403}),
    update=extend_schema(summary="Replace a field mapping", responses=MAPPING_CHANGED),
    partial_update=extend_schema(summary="Change a field mapping", responses=MAPPING_CHANGED),
    destroy=extend_schema(
        summary="Delete a field mapping",
        description="Batches that used it keep their frozen copy.",
        responses={204: None, 403: ERROR_403, 404: ERROR_404},
    ),
)
class FieldMappingViewSet(SandboxScopedViewSet):
    queryset = FieldMapping.objects.all()
    serializer_class = FieldMappingSerializer
    filterset_class = FieldMappingFilterSet
    filter_backends = [SandboxFilterBackend, filters.OrderingFilter]
    ordering_fields = ["name", "entity", "created_at"]

    @extend_schema(
        summary="Mapping targets of an entity",
        parameters=[OpenApiParameter("entity", str, enum=IngestionEntity.values, required=True)],
        responses={200: TargetCatalogSerializer, 400: ERROR_400},
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def targets(self, request, sandbox_id=None):
        entity = request.query_params.get("entity", "")
        if entity not in IngestionEntity.values:
            known = ", ".join(IngestionEntity.values)
            raise RuleViolation(f"'{entity}' is not an entity; use one of {known}.", "unknown_entity", "entity")
        body = {
            "entity": entity,
            "targets": target_catalog(entity),
            "wildcards": [key for key in KEY_TARGETS[entity] if key.endswith(".*") and key != "identity.*"],
            "required": REQUIRED_TARGETS.get(entity, []),
        }
        return Response(body)


# -------------------------------------------------------------------------------- ingestion batches
class IngestionBatchSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    accepted = serializers.IntegerField(read_only=True, help_text="created + updated + merged.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = IngestionBatch
        fields = [
            "id", "kind", "entity", "dataset", "file_name", "file_format", "mapping", "columns", "status",
            "progress_percent", "bytes_total", "bytes_done", "rows_done", "accepted", "created", "updated", "merged",
            "rejected", "error", "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class IngestionUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV file with a header row, or JSON lines (one object a line).")
    entity = serializers.ChoiceField(choices=IngestionEntity.choices)
    mapping = serializers.IntegerField(required=False, help_text="A saved field mapping (id) of this sandbox.")
    columns = serializers.JSONField(
        required=False,
        binary=True,
        help_text='An inline mapping as JSON: {"<target>": "<column>"}. Without mapping or columns, the file\'s '
        "column names (or JSON keys) must already be target names.",
    )
    file_format = serializers.ChoiceField(
        choices=IngestionBatch.FileFormat.choices, required=False, help_text="Guessed from the file name when omitted."
    )
    dataset = serializers.CharField(
        required=False, max_length=64, default="file", help_text="Dataset name, used by the merge policy's precedence."
    )

    def validate_mapping(self, value):
        mapping = FieldMapping.objects.for_sandbox(self.context["sandbox"]).filter(pk=value).first()
        if mapping is None:
            raise serializers.ValidationError(f"No field mapping with id {value} in this sandbox.")
        return mapping

    def validate(self, attrs):
        if attrs.get("mapping") is not None and attrs.get("columns"):
            raise serializers.ValidationError({"columns": ["Give a saved mapping or inline columns, not both."]})
        return attrs


class RejectedRecordSerializer(serializers.ModelSerializer):
    row = serializers.IntegerField(source="row_number", help_text="1-based data row in the file, or index in the request.")

    class Meta:
        model = RejectedRecord
        fields = ["id", "row", "field", "reason", "raw", "created_at"]


class CsvRenderer(BaseRenderer):
    """Lets …/report.csv negotiate; the body itself is a file response. Errors are answered as JSON
    (``IngestionBatchViewSet.finalize_response``)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, (bytes, str)):
            return data
        return JSONRenderer().render(data)


@extend_schema_view(
    list=extend_schema(
        summary="Ingestion batches",
        description="File uploads and the daily streaming logs (kind=stream), newest first, with progress and counts.",
    ),
    retrieve=extend_schema(summary="One ingestion batch", responses={200: IngestionBatchSerializer, 404: ERROR_404}),
)
class IngestionBatchViewSet(SandboxScopedViewSet):
    queryset = IngestionBatch.objects.all()
    serializer_class = IngestionBatchSerializer
    filterset_class = IngestionBatchFilterSet
    filter_backends = [SandboxFilterBackend, filters.OrderingFilter]
    ordering_fields = ["created_at", "finished_at"]
    parser_classes = [MultiPartParser, FormParser]
    update = partial_update = destroy = NotOffered()

    def get_queryset(self):
        return super().get_queryset().select_related("created_by")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # An error of the CSV report is the API's JSON error body, labelled as JSON, not as CSV.
        if response.status_code >= 400 and isinstance(getattr(response, "accepted_renderer", None), CsvRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    @extend_schema(
        summary="Upload a file for ingestion",
        description="Multipart upload. The file is kept and processed by a background task; the answer is the "
        "queued batch (poll it for progress). Refusals: unknown_entity, invalid_mapping, mapping_entity_mismatch, "
        "file_too_large.",
        request={"multipart/form-data": IngestionUploadSerializer},
        responses={201: IngestionBatchSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    def create(self, request, sandbox_id=None):
        data = IngestionUploadSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        v = data.validated_data
        batch = start_file_ingestion(
            self.sandbox,
            entity=v["entity"],
            uploaded_file=v["file"],
            user=request.user,
            mapping=v.get("mapping"),
            columns=v.get("columns"),
            file_format=v.get("file_format"),
            dataset=v.get("dataset") or "file",
        )
        batch.refresh_from_db()  # the task may already have run (eager mode)
        return Response(self.get_serializer(batch).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rejected records of a batch",
        description="Every record that was not stored, with its row (or request index), field and reason; by row.",
        parameters=[OpenApiParameter("field", str, description="Only rejections of this field.")],
        responses={200: RejectedRecordSerializer(many=True), 404: ERROR_404},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def rejections(self, request, sandbox_id=None, pk=None):
        batch = self.get_object()
        rows = RejectedRecord.objects.filter(sandbox=self.sandbox, batch=batch).order_by("row_number", "id")
        rows = RejectedRecordFilterSet(request.query_params, queryset=rows, sandbox=self.sandbox).qs
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RejectedRecordSerializer(page, many=True).data)

    @extend_schema(
        summary="Download the error report (CSV)",
        description="Also served at …/report.csv. Columns: row, field, reason, record.",
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (404, "application/json"): ERROR_404},
    )
    @action(detail=True, methods=["get"], renderer_classes=[CsvRenderer])
    def report(self, request, sandbox_id=None, pk=None, format=None):
        batch = self.get_object()
        return FileResponse(
            q.rejections_report_file(batch),
            as_attachment=True,
            filename=q.report_file_name(batch),
            content_type="text/csv; charset=utf-8",
        )


# -------------------------------------------------------------------------------------- streaming
STREAM_RESULT = inline_serializer(
    "StreamResult",
    {
        "accepted": serializers.IntegerField(help_text="Records stored."),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "merged": serializers.IntegerField(),
        "rejected": inline_serializer(
            "StreamRejection",
            {
                "index": serializers.IntegerField(help_text="0-based position of the record in the request."),
                "field": serializers.CharField(),
                "reason": serializers.CharField(),
                "duplicate": serializers.BooleanField(
                    help_text="Already stored by an earlier request: not an error in the data."
                ),
            },
            many=True,
        ),
        "replayed": serializers.BooleanField(required=False, help_text="True when this answers a retry of an earlier request."),
    },
)


STREAM_BODY = {
    "anyOf": [
        {"type": "object", "description": "One record.", "additionalProperties": True},
        {"type": "array", "items": {"type": "object", "additionalProperties": True}, "maxItems": 1000},
        {
            "type": "object",
            "properties": {"records": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
            "required": ["records"],
        },
    ]
}


class _DescribeWithoutSerializer(SimpleMetadata):
    """OPTIONS for a view without a body serializer: name, renderers, parsers; no form fields."""

    def determine_actions(self, request, view):
        return {}


class StreamViewSet(SandboxScopedViewSet):
    """Kept lean: no serializer for the body (the service validates each record), one parse."""

    metadata_class = _DescribeWithoutSerializer

    queryset = IngestionBatch.objects.all()
    list = retrieve = update = partial_update = destroy = NotOffered()
    parser_classes = [JSONParser]
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Stream records into the profile store",
        description="The body is one record, a list of records (at most 1,000), or {\"records\": [...]}. Records "
        "are stored at once and readable immediately. The answer counts what was stored and lists rejected records "
        "by index with field and reason: 200 when all were accepted, 207 when some were rejected, 422 when all "
        "were. Rejections are also kept in the day's streaming batch (ingestion-batches/?kind=stream). With an "
        "`Idempotency-Key`, a retry of the same request stores nothing again and answers the first answer with "
        "replayed: true; the same key with a different body is refused (rule idempotency_key_reused).",
        parameters=[
            OpenApiParameter(
                "entity", str, OpenApiParameter.PATH, enum=IngestionEntity.values, description="The kind of records."
            ),
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                description="A unique key per logical request (e.g. a UUID); retries reuse it.",
            ),
        ],
        request={"application/json": STREAM_BODY},
        responses={
            200: OpenApiResponse(STREAM_RESULT, description="All records accepted."),
            207: OpenApiResponse(STREAM_RESULT, description="Some records rejected (see rejected)."),
            422: OpenApiResponse(STREAM_RESULT, description="All records rejected."),
            400: ERROR_400,
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            OpenApiExample(
                "A person",
                value={
                    "email": "ann@acme.com", "first_name": "Ann", "identity": {"ecid": "1" * 38},
                    "account": {"domain": "acme.com"}, "attributes": {"segment": "enterprise"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "Events",
                value={"records": [{
                    "type": "email.opened", "occurred_at": "2026-11-01T10:00:00Z", "identity": {"email": "ann@acme.com"},
                    "external_id": "evt-1", "properties": {"subject": "Welcome"},
                }]},
                request_only=True,
            ),
        ],
    )  # fmt: skip
    def create(self, request, sandbox_id=None, entity=None):
        if entity not in IngestionEntity.values:
            raise exceptions.NotFound(f"No entity '{entity}'; stream to one of {', '.join(IngestionEntity.values)}.")
        body, answer_status = ingest_stream(
            self.sandbox, entity, records_of(request.data), idempotency_key=request.headers.get("Idempotency-Key") or None
        )
        return Response(body, status=answer_status)


def records_of(data) -> list:
    """The records of a streaming request body: one object, a list, or {"records": [...]}."""
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
        if not isinstance(data, list):
            raise RuleViolation('"records" must be a list of record objects.', "stream_body", "records")
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RuleViolation(
            'The body must be a record object, a list of them, or {"records": [...]}.', "stream_body", "records"
        )
    if not data:
        raise RuleViolation("The request carries no record.", "stream_body", "records")
    return data


