"""The harness itself: robust on a busy CI machine (ports, leftovers, missing packages)."""

import socket
import subprocess

import httpx
import pytest

from tests.wordpress_real import harness

pytestmark = pytest.mark.wordpress


def test_a_port_taken_before_php_binds_it_is_swapped_for_a_free_one(tmp_path, monkeypatch):
    """A second, unseeded site on a squatted port; it also proves the plugin's deactivation and
    uninstall (which the session site cannot lose) and that php -S and its workers stop."""
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
            left = site.php(
                """<?php
                require_once ABSPATH . 'wp-admin/includes/plugin.php';
                require_once ABSPATH . 'wp-admin/includes/file.php';
                deactivate_plugins( 'association-app/association-app.php' );
                uninstall_plugin( 'association-app/association-app.php' );
                global $wpdb;
                echo wp_json_encode( array(
                    'table' => $wpdb->get_var(
                        "SHOW TABLES LIKE '{$wpdb->prefix}association_sync_deletions'"
                    ),
                    'options' => $wpdb->get_col(
                        "SELECT option_name FROM {$wpdb->options}
                         WHERE option_name LIKE 'association\\_app\\_%'"
                    ),
                    'member_dates' => (int) $wpdb->get_var(
                        "SELECT COUNT(*) FROM {$wpdb->usermeta}
                         WHERE meta_key = '_association_modified_gmt'"
                    ),
                    'rule' => array_key_exists(
                        '^api/v1/sync/(.*)$', (array) get_option( 'rewrite_rules' )
                    ),
                ) );"""
            )
            assert left == {"table": None, "options": [], "member_dates": 0, "rule": False}
            gone = httpx.get(f"{site.url}/api/v1/sync/ping")
            assert gone.status_code == 404 and "association_sync" not in gone.text
            assert site.take_php_problems() == []
            group = site.process.pid  # php -S leads its own process group (its session)
            assert len(harness.group_members(group)) == 3, "the master and its 2 workers"
        finally:
            site.stop()
            site.drop_database()
            site.remove_files()
    assert site.process is None
    # the workers are gone with the master: nothing of the group is left, nothing listens
    assert harness.group_members(group) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", site.port), timeout=2).close()


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


def test_every_plugin_file_passes_php_lint():
    files = sorted(harness.PLUGIN_SRC.rglob("*.php"))
    assert len(files) >= 8
    for path in files:
        lint = subprocess.run(
            [harness.PHP, "-l", str(path)], capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_databases_of_dead_test_processes_are_dropped_and_live_ones_kept():
    mine = harness.session_db_name()
    prefix = mine.rsplit("_", 1)[0] + "_"
    dead = prefix + "4194305"  # above Linux's largest pid: no such process
    other_host = harness.DEFAULT_DB_NAME + "_otherhost_4194305"
    for name in (dead, other_host):
        harness._mysql(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    try:
        assert harness.session_db_name() == mine
        names = {name for (name,) in harness._mysql("SHOW DATABASES")}
        assert dead not in names, "a dead process's database is dropped"
        assert other_host in names, "another host's database is none of our business"
        assert mine in names, "this session's own database stays"
    finally:
        for name in (dead, other_host):
            harness._mysql(f"DROP DATABASE IF EXISTS `{name}`")
