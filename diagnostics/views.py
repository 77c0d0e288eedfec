"""Diagnostics pages: the connection test (run, status, result) and Mapping Diagnostics.

Thin over diagnostics.services; every object comes through accounts.tenancy. The connection
test runs in the worker (the page polls while it is unfinished); the mapping diagnostics run
in the request (one short GET per entity type, nothing written).
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.tenancy import get_connector_for, get_organisation_for, org_context
from diagnostics import services
from diagnostics.forms import MappingCheckForm

PANEL_TEMPLATE = "diagnostics/_overview_panel.html"
# Seconds between reloads of the no-JavaScript page while a test runs (Refresh header).
NO_JS_REFRESH_SECONDS = 3


def _load(request, org, connector):
    organisation = get_organisation_for(request.user, org)
    return organisation, get_connector_for(request.user, organisation, connector)


@require_POST
def run_connection_test(request, org, connector):
    organisation, connector = _load(request, org, connector)
    services.request_connection_test(connector, user=request.user)
    if request.htmx:
        return render(
            request, PANEL_TEMPLATE, {**org_context(request, organisation), "connector": connector}
        )
    messages.info(request, "Connection test started. This page shows the result when it is done.")
    return redirect("diagnostics:connection_test", organisation.slug, connector.pk)


@require_GET
def connection_test(request, org, connector):
    """The latest connection test: the panel fragment for htmx polling, a page otherwise."""
    organisation, connector = _load(request, org, connector)
    context = {**org_context(request, organisation), "connector": connector}
    if request.htmx:
        return render(request, PANEL_TEMPLATE, context)
    response = render(request, "diagnostics/connection_test.html", context)
    test = services.latest_test(connector)
    if test is not None and test.is_unfinished:
        # Without JavaScript nothing polls: let the browser reload until the result is in.
        response["Refresh"] = str(NO_JS_REFRESH_SECONDS)
    return response


@require_GET
def mapping(request, org, connector):
    organisation, connector = _load(request, org, connector)
    form = MappingCheckForm(request.GET or None, connector=connector)
    diagnostics = None
    unavailable = ""
    record_id = None
    if not form.is_bound or form.is_valid():
        entity_types, record_id = form.selection()
        if entity_types:
            try:
                diagnostics = services.run_mapping_diagnostics(
                    connector, entity_types, record_id=record_id
                )
            except services.DiagnosticsUnavailable as exc:
                unavailable = str(exc)
    return render(
        request,
        "diagnostics/mapping.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "form": form,
            "diagnostics": diagnostics,
            "unavailable": unavailable,
            "record_id": record_id,
        },
    )
