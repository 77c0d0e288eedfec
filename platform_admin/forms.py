"""The filters of Platform → Connectors, read from the query string."""

from django import forms

from connectors.models import Connector
from notifications.models import ConnectorHealth
from platform_admin.queries import DEFAULT_SORT, sort_choices


class ConnectorFilterForm(forms.Form):
    """The filters of Platform → Connectors, read from the query string (GET, shareable)."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=120,
        strip=True,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Connector or organisation name"}
        ),
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *Connector.Status.choices],
    )
    kind = forms.ChoiceField(
        label="Type",
        required=False,
        choices=[("", "Any type"), *Connector.Kind.choices],
    )
    health = forms.ChoiceField(
        label="Health",
        required=False,
        choices=[
            ("", "Any health"),
            ("failing", "Failing now"),
            *((cause, f"Failing: {label}") for cause, label in ConnectorHealth.Cause.choices),
            ("stale", "Stale data"),
            ("auto_paused", "Paused automatically"),
        ],
    )
    sort = forms.ChoiceField(required=False, choices=sort_choices(), widget=forms.HiddenInput)

    def filters(self) -> dict[str, str]:
        """The valid filters; a value that failed validation is dropped (and reported)."""
        data = self.cleaned_data if self.is_bound else {}
        return {
            "search": data.get("q") or "",
            "status": data.get("status") or "",
            "kind": data.get("kind") or "",
            "health": data.get("health") or "",
            "sort": data.get("sort") or DEFAULT_SORT,
        }
