"""Profile pages under /profiles/: people and accounts (search, lists, detail pages with relations
and activity timelines) and data ingestion (file upload, batches with progress and error reports,
saved field mappings).

Every page works in the session's sandbox (``request.sandbox``) and looks objects up there only, so
another sandbox's ids answer 404. Viewers read; marketers upload and edit mappings (the forms
answer 403 to viewers, who see no buttons). Each page costs a fixed number of queries: lists are
paginated and relations are loaded with select_related / prefetch_related.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.generic import TemplateView
from django_htmx.http import HttpResponseClientRefresh

from cdp.choices import BatchStatus, Role
from cdp.exceptions import RuleViolation
from cdp.filtersets_profiles import AccountFilterSet, IngestionBatchFilterSet, PersonFilterSet
from cdp.forms_profiles import ColumnMappingForm, MappingForm, UploadForm, add_rule_violation, entity_of
from cdp.models import Account, FieldMapping, IngestionBatch, Person, RejectedRecord
from cdp.services import profile_queries as q
from cdp.services.ingestion import start_file_ingestion
from cdp.views.mixins import SandboxRoleRequiredMixin

LIST_PAGE_SIZE = 50
DETAIL_PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 25
SHOWN_CHILDREN = 50


def editor_url():
    return reverse("cdp:profiles-mapping-editor")


def _page_url(request, param, number) -> str:
    query = request.GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"


def _link_pages(request, page, param):
    """Give a page the URLs of its neighbours, keeping the other query parameters (filters…)."""
    page.previous_url = _page_url(request, param, page.previous_page_number()) if page.has_previous() else ""
    page.next_url = _page_url(request, param, page.next_page_number()) if page.has_next() else ""
    return page


def paginate(request, queryset, per_page, param="page"):
    """A page of ``queryset`` from the ``param`` query parameter (bad or too large numbers are clamped)."""
    return _link_pages(request, Paginator(queryset, per_page).get_page(request.GET.get(param)), param)


class CountlessPage:
    """A page that does not count the rows (a busy account's timeline can hold millions of events):
    it reads one row more than it shows to know whether an older page exists."""

    def __init__(self, request, queryset, per_page, param):
        try:
            self.number = max(1, int(request.GET.get(param, 1)))
        except ValueError:
            self.number = 1
        start = (self.number - 1) * per_page
        rows = list(queryset[start : start + per_page + 1])
        self.object_list = rows[:per_page]
        self.previous_url = _page_url(request, param, self.number - 1) if self.number > 1 else ""
        self.next_url = _page_url(request, param, self.number + 1) if len(rows) > per_page else ""

    def __iter__(self):
        return iter(self.object_list)


def timeline_page(request, queryset, param="events_page"):
    page = CountlessPage(request, queryset, TIMELINE_PAGE_SIZE, param)
    for event in page.object_list:
        event.label = q.event_label(event.type)
        event.summary = q.event_summary(event.properties)
    return page


class ProfilesPage(SandboxRoleRequiredMixin, TemplateView):
    """A profile page: knows its tab and whether the user may change things here."""

    tab = ""

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            tab=self.tab, can_write=self.request.sandbox_role.allows(Role.MARKETER), **kwargs
        )


# ---------------------------------------------------------------------------------- people, accounts
class PeopleListView(ProfilesPage):
    template_name = "cdp/profiles/people.html"
    tab = "people"

    def get_context_data(self, **kwargs):
        people = Person.objects.for_sandbox(self.sandbox)
        filterset = PersonFilterSet(self.request.GET or None, queryset=people, sandbox=self.sandbox)
        page = paginate(self.request, q.people_for_listing(filterset.qs), LIST_PAGE_SIZE)
        filtered = any(self.request.GET.get(name) for name in filterset.filters)
        return super().get_context_data(filterset=filterset, page=page, filtered=filtered, **kwargs)


class AccountListView(ProfilesPage):
    template_name = "cdp/profiles/accounts.html"
    tab = "accounts"

    def get_context_data(self, **kwargs):
        accounts = Account.objects.for_sandbox(self.sandbox)
        filterset = AccountFilterSet(self.request.GET or None, queryset=accounts, sandbox=self.sandbox)
        page = paginate(self.request, q.accounts_for_listing(filterset.qs), LIST_PAGE_SIZE)
        counts = q.people_counts([account.pk for account in page])
        for account in page:
            account.people_count = counts.get(account.pk, 0)
        filtered = any(self.request.GET.get(name) for name in filterset.filters)
        return super().get_context_data(filterset=filterset, page=page, filtered=filtered, **kwargs)


def _with_labels(identities):
    identities = list(identities)
    for identity in identities:
        identity.namespace_label = q.namespace_label(identity.namespace)
    return identities


class PersonDetailView(ProfilesPage):
    template_name = "cdp/profiles/person.html"
    tab = "people"

    def get_context_data(self, pk, **kwargs):
        person = get_object_or_404(q.person_with_relations(Person.objects.for_sandbox(self.sandbox)), pk=pk)
        merges = list(person.merges.all())
        for merge in merges:
            snapshot = dict(merge.merged_snapshot or {})
            merge.snapshot_identities = snapshot.pop("identities", [])
            merge.snapshot_attributes = snapshot.pop("attributes", {}) or {}
            merge.snapshot_fields = [(k, v) for k, v in snapshot.items() if v not in (None, "", False) and k != "id"]
        return super().get_context_data(
            person=person,
            identities=_with_labels(person.identities.all()),
            account_relations=person.account_relations.all(),
            opportunity_relations=person.opportunity_relations.all(),
            list_memberships=person.list_memberships.all(),
            campaign_memberships=person.campaign_memberships.all(),
            merges=merges,
            events=timeline_page(self.request, q.person_timeline(person)),
            **kwargs,
        )


class AccountDetailView(ProfilesPage):
    template_name = "cdp/profiles/account.html"
    tab = "accounts"

    def get_context_data(self, pk, **kwargs):
        account = get_object_or_404(q.account_with_relations(Account.objects.for_sandbox(self.sandbox)), pk=pk)
        children = list(q.account_children(account)[: SHOWN_CHILDREN + 1])
        events = timeline_page(self.request, q.account_timeline(account))
        for event in events:
            event.own = event.account_id == account.pk
        return super().get_context_data(
            account=account,
            identities=_with_labels(account.identities.all()),
            children=children[:SHOWN_CHILDREN],
            more_children=len(children) > SHOWN_CHILDREN,
            people=paginate(self.request, q.account_people(account), DETAIL_PAGE_SIZE, "people_page"),
            opportunities=paginate(self.request, q.account_opportunities(account), DETAIL_PAGE_SIZE, "opportunities_page"),
            events=events,
            **kwargs,
        )


# -------------------------------------------------------------------------------------- ingestion
class BatchListView(ProfilesPage):
    template_name = "cdp/profiles/batches.html"
    tab = "ingest"

    def get_context_data(self, **kwargs):
        batches = IngestionBatch.objects.for_sandbox(self.sandbox).select_related("created_by").order_by("-created_at", "-id")
        filterset = IngestionBatchFilterSet(self.request.GET or None, queryset=batches, sandbox=self.sandbox)
        page = paginate(self.request, filterset.qs, LIST_PAGE_SIZE)
        return super().get_context_data(filterset=filterset, page=page, **kwargs)


def _sandbox_batch(sandbox, pk):
    return get_object_or_404(IngestionBatch.objects.for_sandbox(sandbox).select_related("created_by", "mapping"), pk=pk)


def _is_active(batch) -> bool:
    return batch.status in (BatchStatus.QUEUED, BatchStatus.RUNNING) and batch.kind == IngestionBatch.Kind.FILE


class BatchDetailView(ProfilesPage):
    template_name = "cdp/profiles/batch.html"
    tab = "ingest"

    def get_context_data(self, pk, **kwargs):
        batch = _sandbox_batch(self.sandbox, pk)
        rejections = RejectedRecord.objects.filter(sandbox=self.sandbox, batch=batch).order_by("row_number", "id")
        return super().get_context_data(
            batch=batch,
            active=_is_active(batch),
            rejections=paginate(self.request, rejections, LIST_PAGE_SIZE),
            **kwargs,
        )


class BatchProgressView(ProfilesPage):
    """The progress bar and counts, polled by the batch page every second while the batch runs."""

    template_name = "cdp/profiles/_batch_progress.html"
    tab = "ingest"

    def get(self, request, pk):
        batch = _sandbox_batch(self.sandbox, pk)
        if request.htmx and not _is_active(batch):
            # Finished since the page was drawn: reload it to show the report and rejections.
            return HttpResponseClientRefresh()
        return self.render_to_response(self.get_context_data(batch=batch, active=_is_active(batch)))


class BatchReportView(ProfilesPage):
    def get(self, request, pk):
        batch = _sandbox_batch(self.sandbox, pk)
        return FileResponse(
            q.rejections_report_file(batch),
            as_attachment=True,
            filename=q.report_file_name(batch),
            content_type="text/csv; charset=utf-8",
        )


class UploadView(ProfilesPage):
    """Upload a file for ingestion. Marketers only, for the form as well as the upload."""

    template_name = "cdp/profiles/upload.html"
    tab = "ingest"
    read_role = Role.MARKETER

    def get(self, request):
        entity = entity_of(request.GET.get("entity"))
        form = UploadForm(sandbox=self.sandbox, editor_url=editor_url(), initial={"entity": entity, "dataset": "file"})
        return self.render_to_response(self.get_context_data(form=form, mapping_form=ColumnMappingForm(entity=entity)))

    def post(self, request):
        form = UploadForm(request.POST, request.FILES, sandbox=self.sandbox, editor_url=editor_url())
        entity = entity_of(request.POST.get("entity"))
        mapping_form = ColumnMappingForm(request.POST, entity=entity)
        if form.is_valid() and mapping_form.is_valid():
            mapping = form.cleaned_data["mapping"]
            if mapping is not None and mapping_form.columns:
                form.add_error("mapping", "Choose a saved mapping or fill in the column mapping, not both.")
            else:
                try:
                    batch = start_file_ingestion(
                        self.sandbox,
                        entity=form.cleaned_data["entity"],
                        uploaded_file=form.cleaned_data["file"],
                        user=request.user,
                        mapping=mapping,
                        columns=mapping_form.columns,
                        file_format=form.cleaned_data["file_format"] or None,
                        dataset=form.cleaned_data["dataset"],
                    )
                except RuleViolation as violation:
                    add_rule_violation(form, violation)
                else:
                    messages.success(request, f"{batch.file_name} is uploaded; its records are being loaded.")
                    return redirect("cdp:profiles-batch", pk=batch.pk)
        return self.render_to_response(self.get_context_data(form=form, mapping_form=mapping_form), status=400)


class MappingEditorView(ProfilesPage):
    """The column mapping editor for an entity, swapped in by HTMX when the entity changes."""

    template_name = "cdp/profiles/_mapping_editor.html"
    read_role = Role.MARKETER

    def get(self, request):
        return self.render_to_response({"mapping_form": ColumnMappingForm(entity=entity_of(request.GET.get("entity")))})


class MappingListView(ProfilesPage):
    template_name = "cdp/profiles/mappings.html"
    tab = "mappings"

    def get_context_data(self, **kwargs):
        mappings = FieldMapping.objects.for_sandbox(self.sandbox).order_by("name", "id")
        return super().get_context_data(page=paginate(self.request, mappings, LIST_PAGE_SIZE), **kwargs)


class MappingFormView(ProfilesPage):
    """Create (no pk) or edit a saved field mapping."""

    template_name = "cdp/profiles/mapping_form.html"
    tab = "mappings"
    read_role = Role.MARKETER

    def load(self, pk):
        return get_object_or_404(FieldMapping.objects.for_sandbox(self.sandbox), pk=pk) if pk else None

    def get(self, request, pk=None):
        mapping = self.load(pk)
        entity = mapping.entity if mapping else entity_of(request.GET.get("entity"))
        form = MappingForm(sandbox=self.sandbox, instance=mapping, editor_url=editor_url(), initial={"entity": entity})
        editor = ColumnMappingForm(entity=entity, columns=mapping.columns if mapping else None)
        return self.render_to_response(self.get_context_data(form=form, mapping_form=editor, mapping=mapping))

    def post(self, request, pk=None):
        mapping = self.load(pk)
        form = MappingForm(request.POST, sandbox=self.sandbox, instance=mapping, editor_url=editor_url())
        editor = ColumnMappingForm(request.POST, entity=entity_of(request.POST.get("entity")))
        if form.is_valid() and editor.is_valid():
            if mapping is None:
                mapping = FieldMapping(sandbox=self.sandbox)
            mapping.name, mapping.entity, mapping.columns = form.cleaned_data["name"], editor.entity, editor.columns
            mapping.save()
            messages.success(request, f"Mapping “{mapping.name}” saved.")
            return redirect("cdp:profiles-mappings")
        return self.render_to_response(self.get_context_data(form=form, mapping_form=editor, mapping=mapping), status=400)


class MappingDeleteView(ProfilesPage):
    template_name = "cdp/profiles/mapping_delete.html"
    tab = "mappings"
    read_role = Role.MARKETER

    def get(self, request, pk):
        mapping = get_object_or_404(FieldMapping.objects.for_sandbox(self.sandbox), pk=pk)
        return self.render_to_response(self.get_context_data(mapping=mapping))

    def post(self, request, pk):
        mapping = get_object_or_404(FieldMapping.objects.for_sandbox(self.sandbox), pk=pk)
        mapping.delete()
        messages.success(request, f"Mapping “{mapping.name}” deleted. Batches that used it keep their copy.")
        return redirect(reverse("cdp:profiles-mappings"))


# Included by cdp/urls.py at /profiles/ (names join the ``cdp`` namespace).
urlpatterns = [
    path("", PeopleListView.as_view(), name="profiles"),
    path("people/<int:pk>/", PersonDetailView.as_view(), name="profiles-person"),
    path("accounts/", AccountListView.as_view(), name="profiles-accounts"),
    path("accounts/<int:pk>/", AccountDetailView.as_view(), name="profiles-account"),
    path("ingest/", BatchListView.as_view(), name="profiles-batches"),
    path("ingest/upload/", UploadView.as_view(), name="profiles-upload"),
    path("ingest/mapping-editor/", MappingEditorView.as_view(), name="profiles-mapping-editor"),
    path("ingest/<int:pk>/", BatchDetailView.as_view(), name="profiles-batch"),
    path("ingest/<int:pk>/progress/", BatchProgressView.as_view(), name="profiles-batch-progress"),
    path("ingest/<int:pk>/report.csv", BatchReportView.as_view(), name="profiles-batch-report"),
    path("ingest/mappings/", MappingListView.as_view(), name="profiles-mappings"),
    path("ingest/mappings/new/", MappingFormView.as_view(), name="profiles-mapping-create"),
    path("ingest/mappings/<int:pk>/edit/", MappingFormView.as_view(), name="profiles-mapping-edit"),
    path("ingest/mappings/<int:pk>/delete/", MappingDeleteView.as_view(), name="profiles-mapping-delete"),
]
