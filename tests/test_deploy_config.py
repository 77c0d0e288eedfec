"""The production stack keeps its PostgreSQL connections (the polled job status measured about
twice as fast, docs/reliability.md), and replaces one PostgreSQL dropped meanwhile."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_persistent_connections_are_health_checked():
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": "postgres://u:p@db.example:5432/app",
        "DB_CONN_MAX_AGE": "60",
    }
    code = (
        "import json; from config import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [60, True]


def test_compose_web_keeps_connections_and_its_database():
    compose = (ROOT / "docker-compose.yml").read_text()
    web = re.search(r"\n  web:\n(.*?)\n  [a-z]+:\n", compose, re.S).group(1)
    assert 'DB_CONN_MAX_AGE: "60"' in web
    # A service's own `environment:` replaces the anchor's whole mapping (YAML merge is not
    # deep), so web must repeat the anchor's database and broker, identically.
    anchor = re.search(r"x-app: &app\n(.*?)\n\n", compose, re.S).group(1)
    for name in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
        line = re.search(rf"^\s+{name}: .*$", anchor, re.M).group(0).strip()
        assert line in web, name


def read_settings(code: str, **variables) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBUG": "1", **variables}
    return subprocess.run(
        [sys.executable, "-c", f"from config import settings; {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_lists_and_booleans_from_the_environment():
    out = read_settings(
        "print(settings.ALLOWED_HOSTS, settings.BEHIND_PROXY)",
        ALLOWED_HOSTS=" a.example.org, b.example.org,",
        BEHIND_PROXY="yes",
    )
    assert out.stdout.strip().splitlines()[-1] == "['a.example.org', 'b.example.org'] True"


def test_a_boolean_it_cannot_read_stops_the_start_naming_the_variable():
    # Before environs, "enabled" silently meant off.
    out = read_settings("pass", BEHIND_PROXY="enabled")
    assert out.returncode != 0
    assert 'Environment variable "BEHIND_PROXY" invalid' in out.stderr
