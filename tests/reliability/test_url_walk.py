"""Every URL of the product with hostile path and query values, as alice (organisation admin),
root (platform admin) and anonymous: none answers 500 (about 5,200 requests in six tests;
docs/reliability.md has the figures).

The routes come from the URL configuration itself (conftest.walk_urls), so a view added later
is walked without touching this file. Each placeholder in turn gets each hostile value (the
others point at org A's real objects); each real URL is then asked with hostile query values
on every parameter a view reads. alice also POSTs to every hostile path: no id among them
names an existing object, so nothing can change."""

import pytest
from django.test import Client

from .conftest import fill, object_values_for, placeholders, project_urls

HOSTILE_PATH_VALUES = [
    "0",
    "-1",
    "9223372036854775808",  # just past PostgreSQL's bigint
    "99999999999999999999999999999999999999",
    "abc",
    "%ff%fe",  # invalid UTF-8
    "%C0%AF",  # overlong UTF-8 for "/"
    "%00",
    "x" * 300,
]
HOSTILE_QUERY_VALUES = [
    "-1",
    "0",
    "9223372036854775808",
    "99999999999999999999999999999999999999",
    "%ff%fe",
    "%00",
    "%C0%AF",
    "abc",
    "1e309",
    "<script>alert(1)</script>",
    "x" * 5000,
]
# Every query parameter a view reads (grep request.GET and the filter forms); extra ones are
# harmless, and "page"/"after"/"before" are the keyset pagination's.
QUERY_PARAMETERS = [
    "page",
    "after",
    "before",
    "q",
    "status",
    "entity_type",
    "operation",
    "record_id",
    "sort",
    "kind",
    "organisation",
    "frequency",
    "next",
]


def clients(alice, root):
    anonymous = Client(raise_request_exception=False)
    as_alice = Client(raise_request_exception=False)
    as_alice.force_login(alice)
    as_root = Client(raise_request_exception=False)
    as_root.force_login(root)
    return {"anonymous": anonymous, "alice": as_alice, "root": as_root}


def hostile_paths(route, real):
    for name in placeholders(route):
        for value in HOSTILE_PATH_VALUES:
            yield fill(route, {**real, name: value})


#: Asked of every parameter alone; every value of HOSTILE_QUERY_VALUES goes to all at once.
ONE_BY_ONE = ["9223372036854775808", "%ff%fe"]


def hostile_queries(path):
    for value in HOSTILE_QUERY_VALUES:
        # All parameters at once, as a crafted link would carry them.
        yield path + "?" + "&".join(f"{p}={value}" for p in QUERY_PARAMETERS)
    for parameter in QUERY_PARAMETERS:
        for value in ONE_BY_ONE:
            # Alone too: a view that stops at the first bad parameter would hide the others.
            yield f"{path}?{parameter}={value}"


# The walk in parts (who × what), so that pytest-xdist spreads its ~5,000 requests over its
# workers: in one test it was the suite's longest by far (50 s idle, 140 s under load).
# The query walks, the longest parts (30-38 s idle), each take every other route in two
# halves, so that no part is the one a worker finishes alone at the end of the run.
# Anonymous requests all end at the login redirect: the paths are enough for them.
QUERY_HALVES = 2
WALK_PARTS = [
    ("alice", "paths"),
    ("alice", "posts"),
    *[("alice", f"queries-{half}") for half in range(QUERY_HALVES)],
    ("root", "paths"),
    *[("root", f"queries-{half}") for half in range(QUERY_HALVES)],
    ("anonymous", "paths"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("who", "part"), WALK_PARTS)
def test_no_url_answers_500_to_hostile_values(populated, alice, root, who, part):
    client = clients(alice, root)[who]
    tried = 0
    errors = []
    statuses = {}
    routes = 0
    kind, _, half = part.partition("-")
    for index, (route, _converters, name, _callback) in enumerate(project_urls()):
        if half and index % QUERY_HALVES != int(half):
            continue
        routes += 1
        real = object_values_for(route, populated)
        if kind == "queries":
            plan = [("get", url) for url in hostile_queries(fill(route, real))]
        else:
            method = "post" if kind == "posts" else "get"
            plan = [(method, path) for path in hostile_paths(route, real)]
        for method, url in plan:
            response = getattr(client, method)(url)
            tried += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                errors.append(f"{who} {method.upper()} {url[:120]} ({name}): 500")
    print(f"URL walk ({who}, {part}): {tried} requests, statuses {sorted(statuses.items())}")
    assert not errors, "\n".join(errors[:40])
    assert tried > routes  # the walk really covered the product
