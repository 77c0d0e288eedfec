"""Platform → pages: every organisation at once, for platform admins (super admins) only."""

from functools import wraps
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject

from connectors.models import Connector
from platform_admin import queries
from platform_admin.filters import ConnectorFilter
from syncjobs import charts

PAGE_SIZE = 50


def platform_admin_required(view):
    """Anyone else gets a 404, like another organisation's object: the page's existence
    is not disclosed. (Anonymous users never get here: LoginRequiredMiddleware.)"""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_platform_admin:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapper


def _querystring(filters: dict, **changes) -> str:
    params = {
        "q": filters["search"],
        "status": filters["status"],
        "kind": filters["kind"],
        "health": filters["health"],
        "sort": "" if filters["sort"] == queries.DEFAULT_SORT else filters["sort"],
    }
    params.update(changes)
    return urlencode({key: value for key, value in params.items() if value})


def _sort_headers(filters: dict) -> list[dict]:
    """One entry per sortable column: its link toggles the direction of the current key."""
    current = filters["sort"]
    headers = []
    for key, label in queries.SORT_LABELS.items():
        active = current.removeprefix("-") == key
        descending = active and current.startswith("-")
        headers.append(
            {
                "label": label,
                "aria_sort": ("descending" if descending else "ascending") if active else "",
                "querystring": _querystring(
                    filters, sort=key if not active or descending else f"-{key}"
                ),
            }
        )
    return headers


@platform_admin_required
def connectors(request):
    connector_filter = ConnectorFilter(request.GET, queryset=Connector.objects.all())
    filters = connector_filter.chosen()

    paginator = Paginator(
        queries.connector_ids(connector_filter.qs, sort=filters["sort"]), PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(queries.connector_rows(page.object_list, sort=filters["sort"]))
    context = {
        "form": connector_filter.form,
        "page": page,
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "headers": _sort_headers(filters),
        "querystring": _querystring(filters),
        "querystring_sort": "" if filters["sort"] == queries.DEFAULT_SORT else filters["sort"],
        "now": timezone.now(),
        "filtered": any(filters[key] for key in ("search", "status", "kind", "health")),
    }
    # An htmx request from the filters, a column header or the pager swaps only the table;
    # a history restore (back button after a cache miss) needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "platform_admin/connectors.html#table", context)
        # The address bar gets the canonical URL (no empty filters, the page actually shown),
        # not the raw form submission: that is the link an admin copies and shares.
        canonical = _querystring(filters, page=page.number if page.number > 1 else "")
        response["HX-Push-Url"] = f"{request.path}?{canonical}" if canonical else request.path
    else:
        context["summary"] = queries.summary()
        context["health"] = queries.health_summary()
        # Computed only when the template's cached fragment is missing (syncjobs.charts).
        context["charts"] = SimpleLazyObject(
            lambda: charts.platform_charts(Connector.objects.all(), context["now"])
        )
        context["charts_since"] = charts.platform_window_start(context["now"])
        context["charts_seconds"] = charts.PLATFORM_CHARTS_SECONDS
        response = render(request, "platform_admin/connectors.html", context)
    # Same URL, two representations: caches must key on the htmx header.
    patch_vary_headers(response, ("HX-Request",))
    return response
