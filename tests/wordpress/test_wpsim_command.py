"""`manage.py wpsim`, as the demo's Procfile runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import ServerError
from wpsim.management.commands.wpsim import parse_fault

ROOT = Path(__file__).resolve().parents[2]
KEY = "demo-acme-sync-key-7f3a9c2e51"


def test_parse_fault():
    assert parse_fault("status,status=503,endpoint=articles,nth=3,count=2") == {
        "kind": "status",
        "status": 503,
        "endpoint": "articles",
        "nth": 3,
        "count": 2,
    }
    assert parse_fault("latency,seconds=0.5,every=1") == {
        "kind": "latency",
        "seconds": 0.5,
        "every": True,
    }
    assert parse_fault("hang,count=none") == {"kind": "hang", "count": None}
    with pytest.raises(CommandError, match="unknown fault"):
        parse_fault("explode")
    with pytest.raises(CommandError, match="name=value"):
        parse_fault("status,503")
    with pytest.raises(CommandError, match="unknown fault option"):
        parse_fault("status,colour=red")


def test_command_serves_the_site_with_faults_and_changes():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.test_settings", PYTHONUNBUFFERED="1")
    command = [sys.executable, "manage.py", "wpsim", "--port", "0", "--records", "120"]
    command += ["--seed", "1", "--key", KEY, "--change-every", "0.2"]
    command += ["--fault", "status,status=500,endpoint=events,every=1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("wpsim: http://127.0.0.1:"), line
        assert "31 article, 37 member" in line  # 25 % and 30 % of 120, remainder spread
        url = line.split()[1].rstrip("/")
        with WordPressClient(url, KEY, allow_private=True, max_retries=0) as client:
            assert client.ping()["site_url"] == url
            with pytest.raises(ServerError):
                next(client.iter_pages("event"))
            first = client.probe("__sim/state", with_key=True).json()["server_time_gmt"]
            assert first
    finally:
        process.terminate()
        process.wait(timeout=10)
