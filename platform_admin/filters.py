"""The filters of Platform → Connectors (django-filter), read from the query string (GET, so a
filtered view is a link to share): search, status, type, health, and the sort key."""

import django_filters
from django import forms
from django.db.models import Q

from connectors.models import Connector
from notifications.models import ConnectorHealth
from platform_admin.queries import DEFAULT_SORT, HEALTH_FILTERS, sort_choices

HEALTH_CHOICES = [
    ("failing", "Failing now"),
    *((cause, f"Failing: {label}") for cause, label in ConnectorHealth.Cause.choices),
    ("stale", "Stale data"),
    ("auto_paused", "Paused automatically"),
]


class ConnectorFilter(django_filters.FilterSet):
    """A value that fails validation is reported in the form and left out of the query."""

    q = django_filters.CharFilter(
        label="Search",
        method="search",
        max_length=120,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Connector or organisation name"}
        ),
    )
    status = django_filters.ChoiceFilter(
        label="Status", choices=Connector.Status.choices, empty_label="Any status"
    )
    kind = django_filters.ChoiceFilter(
        label="Type", choices=Connector.Kind.choices, empty_label="Any type"
    )
    health = django_filters.ChoiceFilter(
        label="Health", choices=HEALTH_CHOICES, empty_label="Any health", method="by_health"
    )
    # Validated here, applied by queries.connector_ids (the sort needs its own annotations).
    sort = django_filters.ChoiceFilter(
        label="Sort", choices=sort_choices(), widget=forms.HiddenInput, method="leave_unfiltered"
    )

    class Meta:
        model = Connector
        fields = ("q", "status", "kind", "health", "sort")

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(organisation__name__icontains=value))

    def by_health(self, queryset, name, value):
        return queryset.filter(HEALTH_FILTERS[value])

    def leave_unfiltered(self, queryset, name, value):
        return queryset

    def chosen(self) -> dict[str, str]:
        """The valid values, "" for none (the sort: its default), for links and the summary."""
        self.is_valid()  # invalid values are reported in the form and left out
        data = self.form.cleaned_data
        return {
            "search": data.get("q") or "",
            "status": data.get("status") or "",
            "kind": data.get("kind") or "",
            "health": data.get("health") or "",
            "sort": data.get("sort") or DEFAULT_SORT,
        }
