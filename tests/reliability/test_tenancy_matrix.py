"""Tenancy matrix: every URL that names an object, every method, as the outsider.

The URL list is read from Django's resolver, so a view added tomorrow is in the matrix
without editing this file; a URL kwarg the matrix cannot fill fails loudly instead of being
left out."""

import uuid

import pytest

from accounts.middleware import PUBLIC_PREFIXES
from records.models import RECORD_MODELS
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import fill, placeholders, project_urls, state_snapshot
from .conftest import object_values_for as object_values

METHODS = ["get", "head", "options", "post", "put", "patch", "delete"]
OBJECT_URLS = [item for item in project_urls() if placeholders(item[0])]
ALL_URLS = project_urls()
MISSING_INT = 987654321


def missing_values(route: str, values: dict) -> dict:
    """The same URL with every object id replaced by one that does not exist."""
    out = {}
    for name, value in values.items():
        if isinstance(value, int):
            out[name] = MISSING_INT
        elif isinstance(value, uuid.UUID):
            out[name] = uuid.uuid4()
        else:
            out[name] = value
    return out


def call(client, method, path, htmx=False):
    headers = {"HX-Request": "true"} if htmx else {}
    return getattr(client, method)(path, headers=headers)


@pytest.fixture
def bob_world(org_b, bob):
    connector = make_connector(org_b, name="Globex site")
    SyncJob.objects.create(connector=connector, kind="FULL", status="COMPLETED")
    return connector


def variants(route, populated, bob_connector):
    """Ways an outsider can aim at org A's object: under A's slug, under their own slug, and
    under their own slug *and* their own connector (job id of A's connector)."""
    names = placeholders(route)
    out = [object_values(route, populated, "acme")]
    org_names = [n for n in names if n in ("org", "organisation", "org_slug")]
    if org_names and len(names) > len(org_names):
        out.append(object_values(route, populated, "globex"))
        if "entity_type" in names:
            # A record URL names a model by its type: org A's record of every type.
            for entity_type in RECORD_MODELS:
                for slug in ("acme", "globex"):
                    out.append(object_values(route, populated, slug, entity_type))
        if "job" in names:
            # Org A's running job (under its own connector): an outsider cancelling it.
            busy = object_values(route, populated, "acme")
            busy["connector"] = populated["running"].connector_id
            busy["job"] = populated["running"].pk
            out.append(busy)
        if "connector" in names and len(names) > 2:
            third = object_values(route, populated, "globex")
            third["connector"] = bob_connector.pk
            out.append(third)
    return out


@pytest.mark.parametrize(
    "route", [item[0] for item in OBJECT_URLS], ids=[item[0] for item in OBJECT_URLS]
)
def test_outsider_gets_404_and_changes_nothing(
    route, populated, bob_world, bob_client, alice_client, root_client
):
    before = state_snapshot()
    for values in variants(route, populated, bob_world):
        path = fill(route, values)
        missing = fill(route, missing_values(route, values))
        for method in METHODS:
            for htmx in (False, True):
                response = call(bob_client, method, path, htmx)
                if response.status_code == 405:
                    # Refused by method before any lookup: only acceptable if a missing id
                    # answers the same, so the status is no oracle for existence.
                    control = call(bob_client, method, missing, htmx)
                    assert control.status_code == 405, (method, path)
                    continue
                assert response.status_code == 404, (
                    f"{method.upper()} {path} (htmx={htmx}) as an outsider answered "
                    f"{response.status_code}, expected 404"
                )
    assert state_snapshot() == before, f"an outsider's request changed data via {route}"

    # Control: the owner (or, for platform pages, the platform admin) reaches the same URL,
    # so the 404s above are tenancy, not a badly built URL.
    owner = root_client if route.startswith("platform/") else alice_client
    response = owner.get(fill(route, object_values(route, populated, "acme")))
    assert response.status_code not in (404, 500), (route, response.status_code)


@pytest.mark.parametrize("route", [item[0] for item in ALL_URLS], ids=[i[0] for i in ALL_URLS])
def test_anonymous_is_redirected_to_login(route, populated, client):
    path = fill(route, object_values(route, populated, "acme"))
    if path == "/metrics":
        # Its own bearer token, no session: off (404) here, 401 without the token when on
        # (tests/engine/test_metrics.py).
        assert client.get(path).status_code == 404
        return
    if path.startswith(PUBLIC_PREFIXES):
        return_code = client.get(path).status_code
        assert return_code in (200, 405), (path, return_code)
        return
    before = state_snapshot()
    for method in METHODS:
        response = call(client, method, path)
        assert response.status_code == 302, (method, path, response.status_code)
        assert response["Location"].startswith("/accounts/login/"), response["Location"]
        htmx = call(client, method, path, htmx=True)
        assert htmx.status_code in (204, 302), (method, path)
        if htmx.status_code == 204:
            assert htmx["HX-Redirect"].startswith("/accounts/login/")
    assert state_snapshot() == before


PLATFORM_URLS = [item[0] for item in ALL_URLS if item[0].startswith("platform/")]


@pytest.mark.parametrize("route", PLATFORM_URLS, ids=PLATFORM_URLS)
def test_platform_pages_are_404_for_organisation_admins(route, populated, alice_client):
    before = state_snapshot()
    path = fill(route, object_values(route, populated, "acme"))
    for method in METHODS:
        response = call(alice_client, method, path)
        assert response.status_code in (404, 405), (method, path, response.status_code)
        if response.status_code == 405:
            assert call(alice_client, method, fill(route, missing_values(route, {}))).status_code
    assert state_snapshot() == before


def test_matrix_covers_the_known_object_views():
    """Guard against the introspection silently finding nothing."""
    routes = {item[0] for item in OBJECT_URLS}
    assert any("<int:connector>" in r for r in routes)
    assert any("<int:job>" in r for r in routes)


@pytest.fixture
def stranger_client(db):
    """Logged in, but a member of no organisation (an account left behind, a new sign-up)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user("stranger", password="stranger-pw-2026")
    client = Client()
    client.force_login(user)
    return client


ORG_URLS = [item[0] for item in OBJECT_URLS if item[0].startswith("o/")]


@pytest.mark.parametrize("route", ORG_URLS, ids=ORG_URLS)
def test_user_without_any_membership_gets_404(route, populated, stranger_client):
    before = state_snapshot()
    path = fill(route, object_values(route, populated, "acme"))
    for method in METHODS:
        for htmx in (False, True):
            response = call(stranger_client, method, path, htmx)
            if response.status_code == 405:
                missing = fill(route, missing_values(route, object_values(route, populated)))
                assert call(stranger_client, method, missing, htmx).status_code == 405
                continue
            assert response.status_code == 404, (method, path, htmx, response.status_code)
    assert state_snapshot() == before
