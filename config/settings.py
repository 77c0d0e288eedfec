"""Settings, read from the environment.

Defaults are production-safe (DEBUG off, secure cookies); `make demo` and the tests
switch to development values through the environment, never by editing this file.
See README.md ("Configuration") and .env.example for every variable.
"""

import logging
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django
from celery.schedules import crontab
from csp.constants import NONE, SELF
from environs import Env

BASE_DIR = Path(__file__).resolve().parent.parent


# environs: booleans ("1", "true", "yes", "on" / "0", "false", "no", "off") and
# comma-separated lists; a value it cannot read stops the start with the variable's name.
env = Env()


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated list, each item stripped ("a, b" is ["a", "b"]), empty items dropped."""
    return [item for item in env.list(name, default or [], subcast=str.strip) if item]


DEBUG = env.bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug-" + "x" * 20

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Fernet keys (comma-separated, newest first) that encrypt connector API keys at rest.
# Several keys allow rotation: the first encrypts, all of them decrypt.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS and not DEBUG:
    raise RuntimeError("FIELD_ENCRYPTION_KEY must be set when DEBUG is off")

# Outbound guard: connector URLs are typed by users, so private/loopback hosts are refused
# unless this is on (the demo and the tests talk to a simulator on 127.0.0.1).
WORDPRESS_ALLOW_PRIVATE_HOSTS = env.bool("WORDPRESS_ALLOW_PRIVATE_HOSTS", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "csp",
    "web",
    "accounts",
    "records",
    "connectors",
    "syncjobs",
    "diagnostics",
    "audit",
    "platform_admin",
    "push",
    "axes",
    "notifications",
    "wpsim",  # only for its management command (`manage.py wpsim`): no models
]
# Django 6 has template partials built in; 5.2 needs the package that became them.
if django.VERSION < (6, 0):
    INSTALLED_APPS.insert(INSTALLED_APPS.index("django_htmx"), "template_partials")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.logs.RequestLogContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# A strict CSP on every response (django-csp): no inline script or style, so markup a
# sanitiser missed cannot run; htmx is vendored (static/vendor), nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.tenancy",
            ],
        },
    }
]

# Embedded default: SQLite, so `make demo` needs nothing but Python.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
        # With persistent connections (DB_CONN_MAX_AGE > 0, the compose file's web), a
        # connection PostgreSQL dropped meanwhile is replaced before a request uses it.
        conn_health_checks=True,
    )
}
# A view that fails half-way leaves nothing half done: its writes (and the tasks it queued
# with on_commit) are rolled back with it, and templates/500.html says so.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share the file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Login throttling (django-axes): AxesStandaloneBackend refuses a locked-out attempt before
# any password is checked, then the normal backend authenticates.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Each parameter is its own lock: an account after this many failures from anywhere (one
# attacker spreading guesses over many addresses), and an address after this many failures
# over any accounts (one attacker trying many accounts). Everyone else logs in as usual.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True  # a successful login forgets that account's earlier typos
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
# Every failed attempt stays listed in Django admin (Axes → access failures) after a lock is
# lifted: the audit trail of who tried which account from where.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
if DEBUG:
    WHITENOISE_AUTOREFRESH = True
    WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security headers. HTTPS-only cookies and HSTS unless explicitly running over plain http
# (the demo sets INSECURE_HTTP=1 because it serves http://127.0.0.1).
INSECURE_HTTP = env.bool("INSECURE_HTTP", DEBUG)
SESSION_COOKIE_SECURE = not INSECURE_HTTP
CSRF_COOKIE_SECURE = not INSECURE_HTTP
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not INSECURE_HTTP)
SECURE_HSTS_SECONDS = 0 if INSECURE_HTTP else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not INSECURE_HTTP
SECURE_HSTS_PRELOAD = not INSECURE_HTTP
# BEHIND_PROXY: a reverse proxy in front of gunicorn terminates TLS and sets X-Forwarded-Proto
# and X-Forwarded-For (replacing whatever the client sent). Only then are those headers
# believed: with gunicorn reachable directly, anyone could send "X-Forwarded-Proto: https"
# to pass for a secure request, or a made-up X-Forwarded-For to dodge the login throttle.
BEHIND_PROXY = env.bool("BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = []

# Celery. Embedded default: a filesystem broker (no server needed) for the demo.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = BASE_DIR / "var" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables: kombu's default is ./control, in whatever folder the process starts.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True  # job state lives in SyncJob rows, not in a result backend
CELERY_TASK_ACKS_LATE = (
    True  # a killed worker's message is redelivered; the runner's claim makes that safe
)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"
# Task modules beyond the `tasks` ones autodiscovery finds: what beat sends.
CELERY_IMPORTS = ("syncjobs.periodic", "notifications.periodic")
# Fairness (syncjobs/routing.py): long walks (initial, full, reconcile) on their own queue,
# incrementals and the rest on the default one. Both are declared so that a worker started
# without -Q consumes both; docker-compose.yml runs one worker per queue.
SYNC_BULK_QUEUE = "bulk"
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, SYNC_BULK_QUEUE: {}}
CELERY_TASK_ROUTES = ("syncjobs.routing.route_task",)
# Seconds between scheduler ticks and stale-job sweeps (see syncjobs/periodic.py).
SYNC_DISPATCH_INTERVAL = float(os.environ.get("SYNC_DISPATCH_INTERVAL", "5"))
SYNC_SWEEP_INTERVAL = float(os.environ.get("SYNC_SWEEP_INTERVAL", "60"))
# Fetch and map a type's next list page while the current one is decided and written
# (syncjobs/engine/core.py, Prefetched): against a real WordPress the site, not the engine,
# bounds a sync; on loopback, nh3 sanitises the next page without the GIL on the other core.
SYNC_PREFETCH = env.bool("SYNC_PREFETCH", True)
# Store a list page in a writer thread while the next one is read (syncjobs/engine/page_writes.py,
# PageWriter): on loopback, where no site bounds the sync, the page's write and the next
# page's lookups then share the two cores instead of taking turns.
SYNC_WRITE_BEHIND = env.bool("SYNC_WRITE_BEHIND", True)
# While a sync runs, how long (ms) a thread may hold the GIL while another waits for it
# (Python's default: 5). The prefetch and writer threads wait on I/O, then for the GIL behind
# the mapping; at 5 ms each page's write kept the next step waiting that much longer.
SYNC_SWITCH_INTERVAL_MS = float(os.environ.get("SYNC_SWITCH_INTERVAL_MS", "0.5"))
# A RUNNING job whose heartbeat is older than this is declared dead by the sweeper.
SYNC_STALE_AFTER_SECONDS = int(os.environ.get("SYNC_STALE_AFTER_SECONDS", "180"))
# Per-record sync log rows are removed this many days after their job finished (FAILED and
# CONFLICT rows: twice as long; job rows and counters are kept); 0 keeps them for ever.
SYNC_LOG_RETENTION_DAYS = int(os.environ.get("SYNC_LOG_RETENTION_DAYS", "90"))
# Politeness (connectors/wordpress/hostlimit.py): concurrent requests per WordPress host
# across all workers (needs Redis; 0: no limit).
WORDPRESS_HOST_CONCURRENCY = int(os.environ.get("WORDPRESS_HOST_CONCURRENCY", "4"))
# Push from WordPress (push app): the platform's public base URL the plugin posts to (push is
# off without it), the debounce (a burst of saves becomes one sync this long after the
# first), pushes accepted per connector per minute, and how far a push's timestamp may be
# from our clock.
PLATFORM_URL = os.environ.get("PLATFORM_URL", "").strip()
PUSH_DEBOUNCE_SECONDS = float(os.environ.get("PUSH_DEBOUNCE_SECONDS", "2"))
PUSH_RATE_LIMIT = int(os.environ.get("PUSH_RATE_LIMIT", "60"))
PUSH_REPLAY_WINDOW = int(os.environ.get("PUSH_REPLAY_WINDOW", "300"))

# Metrics (syncjobs/metrics.py, docs/metrics.md): /metrics answers only with this bearer token.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Where gunicorn's and Celery's processes write their metric values (prometheus-client reads
# the same variable at import); the scrape sums the files. Unset: one process's values only.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# LOG_FORMAT=json: one JSON object per line, with job_id / connector_id / organisation where
# they apply (config/logs.py); Celery's worker and beat use this configuration too.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise RuntimeError(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
if LOG_FORMAT == "json":
    # Python's warnings (Celery's "running as superuser", deprecations) would be printed as
    # bare text lines: route them through logging, and so through the JSON formatter.
    logging.captureWarnings(True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Notifications (notifications/): email through Django's email framework, configured with
# Django's own variable names; by default SMTP on localhost:25. EMAIL_BACKEND picks another
# backend (the demo writes the mails to files under var/mail).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 15
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "notifications@localhost")
# The dashboard's public address, for the links in notifications ("" = paths only).
SITE_URL = os.environ.get("SITE_URL", "")
# Webhook URLs are typed by organisation admins: private/loopback receivers are refused unless
# this is on (by default it follows WORDPRESS_ALLOW_PRIVATE_HOSTS: demo and tests).
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", WORDPRESS_ALLOW_PRIVATE_HOSTS)
NOTIFICATIONS_MAX_RETRIES = int(os.environ.get("NOTIFICATIONS_MAX_RETRIES", "5"))
NOTIFICATIONS_RETRY_BASE_SECONDS = float(os.environ.get("NOTIFICATIONS_RETRY_BASE_SECONDS", "30"))
# Stale data: no successful sync for twice the frequency plus this grace.
NOTIFICATIONS_STALE_GRACE_SECONDS = int(os.environ.get("NOTIFICATIONS_STALE_GRACE_SECONDS", "900"))
NOTIFICATIONS_CHECK_INTERVAL = float(os.environ.get("NOTIFICATIONS_CHECK_INTERVAL", "300"))

CELERY_BEAT_SCHEDULE = {
    "dispatch-due-syncs": {
        "task": "syncjobs.tasks.dispatch_due_syncs",
        "schedule": SYNC_DISPATCH_INTERVAL,
    },
    "sweep-stale-jobs": {
        "task": "syncjobs.tasks.sweep_stale_jobs",
        "schedule": SYNC_SWEEP_INTERVAL,
    },
    "notifications-check": {
        "task": "notifications.tasks.check",
        "schedule": NOTIFICATIONS_CHECK_INTERVAL,
    },
    "notifications-digest": {
        "task": "notifications.tasks.send_digests",
        "schedule": crontab(hour=int(os.environ.get("NOTIFICATIONS_DIGEST_HOUR", "7")), minute=0),
    },
    "prune-sync-logs": {"task": "syncjobs.tasks.prune_sync_logs", "schedule": 3600.0},
}
LOGIN_URL_PATH = "/accounts/login/"
