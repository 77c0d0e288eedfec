"""`{% load diagnostics_tags %}`: what the connection-test panel needs beyond its context.

The panel is included by the connector's Overview tab, whose view knows nothing about
connection tests, so the panel fetches the latest test itself (one indexed query).
"""

from django import template

from diagnostics.checks import CHECKS
from diagnostics.services import latest_test
from records.models import EntityType

register = template.Library()

STEP_LABELS = {"pass": "Passed", "fail": "Failed", "skipped": "Skipped"}


@register.simple_tag
def latest_connection_test(connector):
    return latest_test(connector)


@register.filter
def step_label(status: str) -> str:
    return STEP_LABELS.get(status, status)


@register.filter
def milliseconds(value) -> str:
    """A step's duration: "84 ms" or "2.3 s"."""
    if value is None or value == "":
        return "—"
    value = int(value)
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


@register.simple_tag
def steps_to_come(test) -> list[str]:
    """Names of the steps a running test has not reached yet, in order."""
    done = {step.get("key") for step in (test.steps if test else [])}
    return [check.name for check in CHECKS if check.key not in done]


FIELD_BADGES = {
    "PRESENT": "badge badge-success",
    "DEFAULT_USED": "badge badge-neutral",
    "MISSING": "badge badge-skipped",
    "INVALID": "badge badge-failed",
}
FIELD_LABELS = {
    "PRESENT": "Present",
    "DEFAULT_USED": "Default used",
    "MISSING": "Missing",
    "INVALID": "Invalid",
}


@register.filter
def field_badge(status: str) -> str:
    return FIELD_BADGES.get(str(status), "badge badge-neutral")


@register.filter
def field_label(status: str) -> str:
    return FIELD_LABELS.get(str(status), str(status))


@register.filter
def entity_label(entity_type: str) -> str:
    try:
        return EntityType(entity_type).label
    except ValueError:
        return entity_type
