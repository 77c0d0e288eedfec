"""A minimal WordPress REST index (``GET /wp-json/``) shaped like WordPress 6.1's.

Same top-level keys and types as the real index (fixture ``index.json``), a handful of core
routes, and — when the plugin is active — the ``association-app/v1`` namespace with the
plugin's routes.
"""

from __future__ import annotations

from connectors.wordpress import contract

CORE_NAMESPACES = ["oembed/1.0", "wp/v2", "wp-site-health/v1", "wp-block-editor/v1"]

_PAGING_ARGS = {
    "page": {"type": "integer", "default": 1, "minimum": 1, "required": False},
    "per_page": {
        "type": "integer",
        "default": 100,
        "minimum": 1,
        "maximum": 100,
        "required": False,
    },
}


def _route(base: str, namespace: str, route: str, methods: list[str], args: dict | None = None):
    entry = {
        "namespace": namespace,
        "methods": methods,
        "endpoints": [{"methods": methods, "args": args or {}}],
    }
    if "(?P<" not in route:  # WordPress links only routes without parameters
        entry["_links"] = {"self": [{"href": f"{base}/wp-json{route}"}]}
    return entry


def plugin_routes(base: str) -> dict:
    ns = contract.REST_NAMESPACE
    routes = {
        f"/{ns}": {
            "namespace": ns,
            "methods": ["GET"],
            "endpoints": [{"methods": ["GET"], "args": {"namespace": {"default": ns}}}],
            "_links": {"self": [{"href": f"{base}/wp-json/{ns}"}]},
        },
        f"/{ns}/ping": _route(base, ns, f"/{ns}/ping", ["GET"]),
    }
    list_args = {
        **_PAGING_ARGS,
        "modified_after": {"type": "string", "format": "date-time", "required": False},
        "after_id": {"type": "integer", "minimum": 0, "required": False},
    }
    for endpoint in contract.ENTITY_ENDPOINTS.values():
        routes[f"/{ns}/{endpoint}"] = _route(base, ns, f"/{ns}/{endpoint}", ["GET"], list_args)
        single = f"/{ns}/{endpoint}/(?P<id>[\\d]+)"
        routes[single] = _route(base, ns, single, ["GET", "PUT"])
    routes[f"/{ns}/deletions"] = _route(
        base,
        ns,
        f"/{ns}/deletions",
        ["GET"],
        {**_PAGING_ARGS, "since": {"type": "string", "format": "date-time", "required": False}},
    )
    return routes


def index(site, *, with_plugin: bool = True) -> dict:
    base = site.base_url
    namespaces = list(CORE_NAMESPACES)
    routes = {
        "/": {
            "namespace": "",
            "methods": ["GET"],
            "endpoints": [{"methods": ["GET"], "args": {"context": {"default": "view"}}}],
            "_links": {"self": [{"href": f"{base}/wp-json/"}]},
        },
        "/oembed/1.0": _route(base, "oembed/1.0", "/oembed/1.0", ["GET"]),
        "/wp/v2": _route(base, "wp/v2", "/wp/v2", ["GET"]),
        "/wp/v2/posts": _route(base, "wp/v2", "/wp/v2/posts", ["GET", "POST"], _PAGING_ARGS),
        "/wp/v2/posts/(?P<id>[\\d]+)": _route(
            base, "wp/v2", "/wp/v2/posts/(?P<id>[\\d]+)", ["GET", "POST", "PUT", "PATCH", "DELETE"]
        ),
        "/wp/v2/pages": _route(base, "wp/v2", "/wp/v2/pages", ["GET", "POST"], _PAGING_ARGS),
        "/wp/v2/users": _route(base, "wp/v2", "/wp/v2/users", ["GET", "POST"], _PAGING_ARGS),
        "/wp/v2/users/me": _route(base, "wp/v2", "/wp/v2/users/me", ["GET"]),
        "/wp-site-health/v1": _route(base, "wp-site-health/v1", "/wp-site-health/v1", ["GET"]),
        "/wp-block-editor/v1": _route(base, "wp-block-editor/v1", "/wp-block-editor/v1", ["GET"]),
    }
    if with_plugin:
        namespaces.append(contract.REST_NAMESPACE)
        routes.update(plugin_routes(base))
    return {
        "name": site.name,
        "description": "A simulated WordPress site running the Association App plugin",
        "url": base,
        "home": base,
        "gmt_offset": site.gmt_offset,
        "timezone_string": site.timezone if "/" in site.timezone else "",
        "namespaces": namespaces,
        "authentication": {
            "application-passwords": {
                "endpoints": {"authorization": f"{base}/wp-admin/authorize-application.php"}
            }
        },
        "routes": routes,
        "site_logo": 0,
        "site_icon": 0,
        "site_icon_url": "",
        "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
    }


def namespace_index(site) -> dict:
    ns = contract.REST_NAMESPACE
    return {
        "namespace": ns,
        "routes": plugin_routes(site.base_url),
        "_links": {"up": [{"href": f"{site.base_url}/wp-json/"}]},
    }
