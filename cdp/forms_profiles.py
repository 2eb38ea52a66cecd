"""Forms of the profile pages: file upload, saved field mappings and the column mapping editor.

They check the shape of the input; ``cdp.services.ingestion`` (validate_mapping,
start_file_ingestion) decides what is acceptable, and its refusals land on the form.
"""

from django import forms

from cdp.choices import IngestionEntity
from cdp.exceptions import RuleViolation
from cdp.models import FieldMapping, IngestionBatch
from cdp.schema import ENTITY_FIELDS, KEY_TARGETS, REQUIRED_TARGETS, target_catalog
from cdp.services.ingestion import validate_mapping

MAP_PREFIX = "map:"


def add_rule_violation(form: forms.Form, violation: RuleViolation) -> None:
    """Show a service's refusal on the field it names when the form has it, else at the top."""
    form.add_error(violation.field if violation.field in form.fields else None, violation.message)


def entity_of(value) -> str:
    return value if value in IngestionEntity.values else IngestionEntity.PERSON.value


def _describe_target(target: str, spec) -> str:
    if spec is not None:
        return spec.type
    if target.startswith("identity."):
        return "identity"
    if target == "timestamp":
        return "datetime · when the record was true (merge policy)"
    if target == "external_id":
        return "text · the source's id"
    kind, _, key = target.partition(".")
    return f"{kind} by {key.replace('_', ' ')}"


class ColumnMappingForm(forms.Form):
    """One 'source column' input per target field of an entity, plus free-form lines for custom keys.

    Left empty, a target is not mapped. ``columns`` (after is_valid) is the cleaned mapping
    {target: source column}, checked by validate_mapping.
    """

    extra = forms.CharField(
        label="Custom fields",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "attributes.segment = Segment"}),
    )

    def __init__(self, *args, entity: str, columns: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.entity = entity_of(entity)
        self.entity_label = IngestionEntity(self.entity).label
        columns = dict(columns or {})
        required = set(REQUIRED_TARGETS.get(self.entity, ()))
        fields_spec = ENTITY_FIELDS[self.entity]
        self.targets = target_catalog(self.entity)
        for target in self.targets:
            spec = fields_spec.get(target)
            self.fields[f"{MAP_PREFIX}{target}"] = forms.CharField(
                label=target,
                required=False,
                max_length=255,
                initial=columns.pop(target, ""),
                help_text=("required · " if target in required else "") + _describe_target(target, spec),
                widget=forms.TextInput(attrs={"placeholder": "Column in the file", "autocomplete": "off"}),
            )
        self.wildcards = [key for key in KEY_TARGETS[self.entity] if key.endswith(".*") and key != "identity.*"]
        example = f"{self.wildcards[0][:-1]}segment = Segment" if self.wildcards else ""
        self.fields["extra"].help_text = (
            f"One per line, target = column, for keys outside the list above ({', '.join(self.wildcards)})."
            + (f" E.g. {example}." if example else "")
        )
        # Saved targets that are not in the catalogue (attributes.x…) come back as extra lines.
        self.fields["extra"].initial = "\n".join(f"{target} = {source}" for target, source in columns.items())

    def target_fields(self):
        return [self[f"{MAP_PREFIX}{target}"] for target in self.targets]

    def clean_extra(self):
        lines = {}
        for number, line in enumerate(self.cleaned_data["extra"].splitlines(), start=1):
            if not line.strip():
                continue
            target, sep, source = line.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise forms.ValidationError(f"Line {number}: write it as target = column, e.g. attributes.segment = Segment.")
            lines[target.strip()] = source.strip()
        return lines

    def clean(self):
        cleaned = super().clean()
        columns = {
            target: cleaned.get(f"{MAP_PREFIX}{target}", "").strip()
            for target in self.targets
            if cleaned.get(f"{MAP_PREFIX}{target}", "").strip()
        }
        columns.update(cleaned.get("extra") or {})
        try:
            self.columns = validate_mapping(self.entity, columns)
        except RuleViolation as violation:
            raise forms.ValidationError(violation.message) from None
        return cleaned


class _EntityChoiceField(forms.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=IngestionEntity.choices, **kwargs)


def _swap_editor_on_change(field, editor_url):
    """Changing the entity redraws the column mapping editor with that entity's targets (HTMX)."""
    if editor_url:
        field.widget.attrs.update(
            {"hx-get": editor_url, "hx-target": "#mapping-editor", "hx-swap": "outerHTML", "hx-trigger": "change"}
        )


class UploadForm(forms.Form):
    entity = _EntityChoiceField(help_text="What the file's records are.")
    file = forms.FileField(help_text="CSV with a header row, or JSON lines (.jsonl): one object a line. UTF-8.")
    mapping = forms.ModelChoiceField(
        queryset=FieldMapping.objects.none(),
        required=False,
        label="Saved mapping",
        empty_label="None: use the column mapping below",
        help_text="A saved mapping for the same entity. Leave both empty when the file's columns are already target names.",
    )
    file_format = forms.ChoiceField(
        choices=[("", "Guess from the file name"), *IngestionBatch.FileFormat.choices], required=False, label="Format"
    )
    dataset = forms.CharField(
        max_length=64,
        initial="file",
        help_text="Name of this source for the merge policy (dataset precedence), e.g. crm-export.",
    )

    def __init__(self, *args, sandbox, editor_url="", **kwargs):
        super().__init__(*args, **kwargs)
        _swap_editor_on_change(self.fields["entity"], editor_url)
        self.fields["mapping"].queryset = FieldMapping.objects.for_sandbox(sandbox).order_by("name")
        self.fields["mapping"].label_from_instance = lambda m: f"{m.name} ({m.get_entity_display().lower()})"


class MappingForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Unique in this sandbox, e.g. 'Salesforce contacts export'.")
    entity = _EntityChoiceField()

    def __init__(self, *args, sandbox, instance: FieldMapping | None = None, editor_url="", **kwargs):
        self.sandbox, self.instance = sandbox, instance
        if instance is not None:
            kwargs["initial"] = {"name": instance.name, "entity": instance.entity}
        super().__init__(*args, **kwargs)
        _swap_editor_on_change(self.fields["entity"], editor_url)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = FieldMapping.objects.for_sandbox(self.sandbox).filter(name=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"A mapping named '{name}' already exists in this sandbox.")
        return name
