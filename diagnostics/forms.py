"""The Mapping Diagnostics page's form: which entity type, and optionally which record, to check."""

from django import forms

from records.models import EntityType


class MappingCheckForm(forms.Form):
    """GET form of the Mapping Diagnostics page: one entity type (optional) and, optionally,
    the WordPress ID of the record to check instead of the sample."""

    entity_type = forms.ChoiceField(label="Entity type", required=False)
    record_id = forms.IntegerField(
        label="WordPress ID",
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The post or user ID in WordPress. Leave empty to check a sample record.",
    )

    def __init__(self, *args, connector, **kwargs):
        super().__init__(*args, **kwargs)
        self.enabled = connector.enabled_entity_types()
        self.fields["entity_type"].choices = [("", "All enabled types")] + [
            (value, EntityType(value).label) for value in self.enabled
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("record_id") and not cleaned.get("entity_type"):
            self.add_error("entity_type", "Choose the entity type of the record to check.")
        return cleaned

    def selection(self) -> tuple[list[str], int | None]:
        """(entity types to check, record ID or None); every enabled type when unbound."""
        data = self.cleaned_data if self.is_bound else {}
        chosen = data.get("entity_type")
        return ([chosen] if chosen else list(self.enabled)), data.get("record_id")
