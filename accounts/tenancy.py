"""The one way views reach tenant data: every lookup goes through the current user.

Another organisation's object is a 404, never a 403, so ids do not leak existence.
"""

from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import Organisation
from connectors.models import Connector
from syncjobs.models import SyncJob


def organisations_for(user):
    if not user.is_authenticated:
        return Organisation.objects.none()
    if user.is_platform_admin:
        return Organisation.objects.all()
    return Organisation.objects.filter(memberships__user=user)


def get_organisation_for(user, slug: str) -> Organisation:
    return get_object_or_404(organisations_for(user), slug=slug)


def connectors_for(user, organisation=None):
    qs = Connector.objects.filter(organisation__in=organisations_for(user))
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    return qs


def get_connector_for(user, organisation, pk):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such connector") from None
    return get_object_or_404(
        connectors_for(user, organisation).select_related("organisation"), pk=pk
    )


def get_job_for(user, connector, pk):
    return get_object_or_404(
        SyncJob.objects.select_related("triggered_by"), connector=connector, pk=pk
    )


def is_member(user, organisation) -> bool:
    return organisation.memberships.filter(user=user).exists()


def org_context(request, organisation) -> dict:
    """Context every organisation-scoped page needs (the platform admin's banner uses it)."""
    return {
        "organisation": organisation,
        "organisation_member": (
            not request.user.is_platform_admin or is_member(request.user, organisation)
        ),
    }
