"""The home page (which sends each user where their work is) and the `/healthz` check."""

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from accounts.tenancy import organisations_for


def home(request):
    """Send each user where their work is: platform admins to every connector, an org admin
    of one organisation straight to its connectors, anyone else to a choice."""
    if request.user.is_platform_admin:
        return redirect("platform_admin:connectors")
    organisations = list(organisations_for(request.user)[:2])
    if len(organisations) == 1:
        return redirect("connectors:list", org=organisations[0].slug)
    return render(request, "accounts/home.html", {"organisations": organisations_for(request.user)})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
