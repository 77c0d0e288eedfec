"""One real WordPress per test session (built in a temp dir, served by php -S on loopback).

If WordPress cannot be installed or served the tests FAIL with the reason: they are never
skipped (CI counts a skip as a failure anyway).
"""

import json
import os

import httpx
import pytest

from tests.wordpress_real.harness import DEFAULT_DB_NAME, HarnessError, build_site, php_str


@pytest.fixture(scope="session")
def real_wp(tmp_path_factory):
    try:
        # One database per xdist worker, so parallel runs never share a site.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        site = build_site(
            tmp_path_factory.mktemp("realwp"),
            DEFAULT_DB_NAME + (f"_{worker}" if worker else ""),
        )
        # The suite sends far more than 120 requests a minute; the limit has its own test.
        site.php("<?php update_option( 'association_app_rate_limit', 0 );")
        site.start()
    except HarnessError as exc:
        pytest.fail(f"Could not set up the real WordPress: {exc}", pytrace=False)
    yield site
    site.stop()
    site.drop_database()


@pytest.fixture(scope="session")
def api(real_wp):
    """An httpx client on {site}/api/v1/sync/ that sends the current key."""

    class Api:
        def __init__(self, client):
            self.client = client

        def request(self, method, url, *, key=True, **kwargs):
            headers = dict(kwargs.pop("headers", None) or {})
            if key is True:
                headers["X-Association-Sync-Key"] = real_wp.key
            elif key:
                headers["X-Association-Sync-Key"] = key
            return self.client.request(method, url, headers=headers, **kwargs)

        def get(self, url, **kwargs):
            return self.request("GET", url, **kwargs)

        def post(self, url, **kwargs):
            return self.request("POST", url, **kwargs)

        def put(self, url, **kwargs):
            return self.request("PUT", url, **kwargs)

        def delete(self, url, **kwargs):
            return self.request("DELETE", url, **kwargs)

    with httpx.Client(base_url=real_wp.url + "/api/v1/sync/", timeout=30) as client:
        yield Api(client)


@pytest.fixture
def wp_option(real_wp):
    """Set a WordPress option for one test; the previous value is restored afterwards."""
    saved = {}

    def set_option(name, value):
        if name not in saved:
            saved[name] = real_wp.php(f"<?php echo wp_json_encode( get_option( '{name}', null ) );")
        real_wp.php(
            f"<?php update_option( '{name}', json_decode( {php_str(json.dumps(value))}, true ) );"
        )

    yield set_option
    for name, value in saved.items():
        if value is None:
            real_wp.php(f"<?php delete_option( '{name}' );")
        else:
            real_wp.php(
                f"<?php update_option( '{name}',"
                f" json_decode( {php_str(json.dumps(value))}, true ) );"
            )
