"""Request middleware every page passes: login required (outside a short list of public paths) and
the Content-Security-Policy header."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# Paths reachable without a session: the login page itself, static files, health check,
# /metrics (its own bearer token: syncjobs/metrics.py) and the push endpoint (WordPress signs
# its requests with HMAC instead: push/services.py).
PUBLIC_PREFIXES = (
    "/accounts/login/",
    "/static/",
    "/healthz",
    "/admin/login/",
    "/metrics",
    "/push/",
)


class LoginRequiredMiddleware:
    """Every page requires login (Django 5.1's LoginRequiredMiddleware needs per-view opt-outs;
    a prefix list keeps the exceptions in one place)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            if request.htmx:
                # A full-page redirect rather than swapping a login form into a fragment.
                from django.http import HttpResponse

                response = HttpResponse(status=204)
                response["HX-Redirect"] = settings.LOGIN_URL_PATH
                return response
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)


CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """A strict CSP on every HTML response: no inline script, so a sanitiser miss cannot run."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", CSP)
        return response
