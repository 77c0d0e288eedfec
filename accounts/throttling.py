"""Login throttling's view of who is knocking: the client address django-axes counts by.

django-axes (config/settings.py, AXES_*) counts failed logins per account and per client
address. The address is the TCP peer, unless settings.BEHIND_PROXY says a reverse proxy sets
X-Forwarded-For: then it is the entry that proxy appended (the last one), since every
earlier entry came from the client and can be anything.
"""

import ipaddress

from django.conf import settings
from django.shortcuts import render


def client_ip(request) -> str | None:
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.BEHIND_PROXY else ""
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if hops:
        try:
            return str(ipaddress.ip_address(hops[-1]))
        except ValueError:
            # Not an address (a proxy that passes the client's header through): count by the
            # peer instead; it would not fit axes' address column either.
            pass
    return request.META.get("REMOTE_ADDR")


def lockout(request, response=None, credentials=None):
    """The page a locked-out login gets (HTTP 429): what happened and what to do, in words."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return render(
        request,
        "accounts/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes},
        status=429,
    )
