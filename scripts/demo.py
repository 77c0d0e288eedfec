"""`make demo`: migrate, seed, and run web + worker + beat + simulated WordPress sites together.

Everything is embedded (SQLite, a filesystem Celery broker, the simulator), so nothing but
Python is needed; set DATABASE_URL / REDIS_URL to use PostgreSQL and Redis instead.
One process manager (honcho) runs all of it; Ctrl-C stops all of it.
"""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PYTHON = sys.executable
PORT = os.environ.get("PORT", "8000")

# The demo's simulated WordPress sites: (port, records, seed, sync key).
SITES = [
    (8089, 1000, 1, "demo-acme-sync-key-7f3a9c2e51"),
    (8090, 300, 2, "demo-globex-sync-key-4b8d1e6f07"),
]


def demo_environment() -> dict[str, str]:
    VAR.mkdir(exist_ok=True)
    (VAR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
    secrets_file = VAR / "demo.env"
    if not secrets_file.exists():
        from cryptography.fernet import Fernet

        secrets_file.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
        )
    env = dict(os.environ)
    for line in secrets_file.read_text().splitlines():
        key, _, value = line.partition("=")
        env.setdefault(key, value)
    env.setdefault("DEBUG", "1")
    env.setdefault("INSECURE_HTTP", "1")
    env.setdefault("WORDPRESS_ALLOW_PRIVATE_HOSTS", "1")
    env.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Notification mails are written to files, one per mail, instead of needing a server,
    # unless an SMTP server was given (EMAIL_HOST).
    if "EMAIL_HOST" not in env:
        env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
        env.setdefault("EMAIL_FILE_PATH", str(VAR / "mail"))
    env.setdefault("SITE_URL", f"http://127.0.0.1:{PORT}")
    # web, worker and beat are separate processes: /metrics (with METRICS_TOKEN set) sums the
    # values each writes here. Emptied at every start, as a fresh stack's counters are zero.
    metrics_dir = VAR / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    return env


def main() -> None:
    env = demo_environment()
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], check=True, env=env, cwd=ROOT)
    sites = ",".join(f"{port}:{key}" for port, _, _, key in SITES)
    subprocess.run([*manage, "seed_demo", "--sites", sites], check=True, env=env, cwd=ROOT)

    procfile = VAR / "Procfile.demo"
    lines = [
        f"web: {PYTHON} manage.py runserver 127.0.0.1:{PORT} --noreload",
        # Both queues (syncjobs/routing.py): the demo's one worker runs imports and incrementals.
        f"worker: {PYTHON} -m celery -A config worker --queues celery,bulk --loglevel INFO"
        " --concurrency 2",
        f"beat: {PYTHON} -m celery -A config beat --loglevel INFO"
        f" --schedule {VAR / 'celerybeat-schedule'}",
    ]
    for port, records, seed, key in SITES:
        lines.append(
            f"wp{port}: {PYTHON} manage.py wpsim --port {port} --records {records}"
            f" --seed {seed} --key {key} --change-every 60"
        )
    procfile.write_text("\n".join(lines) + "\n")

    print(
        f"""
  Association App connectors demo
  --------------------------------
  Open  http://127.0.0.1:{PORT}/

  Logins (password: demo-password-2026)
    alice   organisation admin of Acme Association
    bob     organisation admin of Globex Guild
    root    platform admin (sees every organisation)

  Simulated WordPress sites: {", ".join(f"http://127.0.0.1:{p}/" for p, *_ in SITES)}
  Notification mails: {env.get("EMAIL_FILE_PATH") or "SMTP " + env.get("EMAIL_HOST", "")}
  Ctrl-C stops everything.
""",
        flush=True,
    )
    os.execvpe(PYTHON, [PYTHON, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"], env)


if __name__ == "__main__":
    main()
