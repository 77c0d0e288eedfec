"""The harness itself: robust on a busy CI machine (ports, leftovers, missing packages)."""

import socket

import httpx
import pytest

from tests.wordpress_real import harness

pytestmark = pytest.mark.wordpress


def test_a_port_taken_before_php_binds_it_is_swapped_for_a_free_one(real_wp, tmp_path, monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = harness.free_port
        monkeypatch.setattr(harness, "free_port", lambda: next(ports, None) or real_free_port())
        site = harness.build_site(
            tmp_path / "site", harness.session_db_name() + "_port", seed=False
        )
        try:
            assert site.port != taken
            ping = httpx.get(
                f"{site.url}/api/v1/sync/ping", headers={"X-Association-Sync-Key": site.key}
            )
            assert ping.status_code == 200 and ping.json()["home_url"] == site.url
            assert site.take_php_problems() == []
        finally:
            site.stop()
            site.drop_database()
    assert site.process is None


def test_missing_packages_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "WORDPRESS_SRC", tmp_path / "no-wordpress")
    with pytest.raises(harness.HarnessError) as excinfo:
        harness.check_prerequisites()
    assert "apt-get install" in str(excinfo.value) and "wordpress" in str(excinfo.value)
    monkeypatch.setattr(harness, "DB_PORT", harness.free_port())  # nothing listens there
    monkeypatch.setattr(harness, "WORDPRESS_SRC", harness.Path("/usr/share/wordpress"))
    with pytest.raises(harness.HarnessError) as excinfo:
        harness.check_prerequisites()
    assert "MariaDB is not reachable" in str(excinfo.value)
