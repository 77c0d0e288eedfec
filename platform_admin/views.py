from django.http import Http404
from django.shortcuts import render

from connectors.models import Connector


def connectors(request):
    if not request.user.is_platform_admin:
        raise Http404
    rows = Connector.objects.select_related("organisation").order_by("organisation__name", "name")
    return render(request, "platform_admin/connectors.html", {"connectors": rows})
