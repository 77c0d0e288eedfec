from django.shortcuts import render

from accounts.tenancy import connectors_for, get_connector_for, get_organisation_for, org_context


def connector_list(request, org):
    organisation = get_organisation_for(request.user, org)
    connectors = connectors_for(request.user, organisation).order_by("name")
    return render(
        request,
        "connectors/list.html",
        {**org_context(request, organisation), "connectors": connectors},
    )


def connector_detail(request, org, connector):
    organisation = get_organisation_for(request.user, org)
    connector = get_connector_for(request.user, organisation, connector)
    return render(
        request,
        "connectors/detail.html",
        {**org_context(request, organisation), "connector": connector},
    )
