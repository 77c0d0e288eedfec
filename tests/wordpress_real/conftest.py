"""One real WordPress per test session (built in a temp dir, served by php -S on loopback).

If WordPress cannot be installed or served the tests FAIL with the reason: they are never
skipped (CI counts a skip as a failure anyway).
"""

import json

import httpx
import pytest

from tests.waiting import wait_until
from tests.wordpress_real.harness import HarnessError, build_site, php_str, session_db_name


@pytest.fixture(scope="session")
def real_wp(tmp_path_factory):
    site = None
    try:
        # A database of this process's own: concurrent runs (xdist workers, two checkouts on
        # one machine) never share or drop each other's site.
        site = build_site(tmp_path_factory.mktemp("realwp"), session_db_name())
        # The suite sends far more than 300 requests a minute; the limit has its own tests.
        site.php("<?php update_option( 'association_app_rate_limit', 0 );")
        problems = site.take_php_problems()
        if problems:
            raise HarnessError(
                "PHP reported problems while installing and seeding WordPress:\n"
                + "\n".join(problems[:20])
            )
    except HarnessError as exc:
        if site is not None:
            site.stop()
            site.drop_database()
        pytest.fail(f"Could not set up the real WordPress: {exc}", pytrace=False)
    try:
        yield site
    finally:
        site.stop()
        site.drop_database()
        site.remove_files()


@pytest.fixture(autouse=True)
def no_php_problems(real_wp):
    """Fail the test during which PHP (the server or a CLI run) logged an error, a warning, a
    notice or a deprecation in our code, or the site answered a 5xx: a JSON API that passes
    while PHP complains is not done."""
    real_wp.take_php_problems()
    yield
    problems = real_wp.take_php_problems()
    if problems:
        pytest.fail(
            f"PHP reported {len(problems)} problem(s) during this test "
            f"(logs: {real_wp.error_log}, {real_wp.log_path}):\n" + "\n".join(problems[:20]),
            pytrace=False,
        )


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


def wait_for_the_next_wordpress_second(api, after: str | None = None) -> None:
    """Wait until the site's clock (the ping's `server_time_gmt`, one-second resolution) is
    past `after` (default: the second it shows now), so what the site writes from here on is
    strictly newer than what it wrote before."""
    if after is None:
        after = api.get("ping").json()["server_time_gmt"]
    wait_until(
        lambda: api.get("ping").json()["server_time_gmt"] > after,
        timeout=10,
        interval=0.1,
        what=f"the WordPress clock to pass {after}",
    )
