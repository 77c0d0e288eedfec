"""Settings for the test suite: the production settings with test-only values filled in.

DATABASE_URL / REDIS_URL come from the environment (CI points them at the machine's
PostgreSQL and Redis); without them the suite runs on SQLite for quick local loops.
Under pytest-xdist each worker process also gets its own Redis database, Celery queue and
media folder (see the end of this file).
"""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "s" * 40)
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "3V6xMJcSMr_9b8y8fe2y-D4lQ2fUfq6kCqgCmJe3dG4=")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("INSECURE_HTTP", "1")
os.environ.setdefault("WORDPRESS_ALLOW_PRIVATE_HOSTS", "1")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
MEDIA_ROOT = BASE_DIR / "var" / "test-media"  # noqa: F405
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True


def redis_db_for_worker(url: str, worker: int) -> str:
    """`url` with its database number moved on by `worker`, wrapping at Redis's 16 databases:
    redis://host:6379/6 is worker 0's, /7 worker 1's, and so on."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + worker) % 16}"))


# pytest-xdist runs the suite in worker processes named gw0, gw1, ... (PYTEST_XDIST_WORKER;
# pytest-django already gives each its own test database). Tests purge and inspect the broker
# and start real Celery workers, so each xdist worker needs a broker of its own, or one worker's
# purge drops another's message and one's Celery worker runs another's job. The Celery worker
# processes a test starts inherit PYTEST_XDIST_WORKER and are handed CELERY_BROKER_URL, so they
# land on the same database and queue as the test that started them.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER:
    if REDIS_URL:  # noqa: F405
        REDIS_URL = redis_db_for_worker(REDIS_URL, int(XDIST_WORKER.removeprefix("gw")))  # noqa: F405
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or CELERY_BROKER_URL  # noqa: F405
    # Its own queue name as well: the filesystem broker (no REDIS_URL) has one folder for all,
    # and a Redis database that wrapped round to one in use elsewhere still never shares a queue.
    CELERY_TASK_DEFAULT_QUEUE = f"celery-{XDIST_WORKER}"
    SYNC_BULK_QUEUE = f"bulk-{XDIST_WORKER}"
    CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, SYNC_BULK_QUEUE: {}}
    MEDIA_ROOT = MEDIA_ROOT / XDIST_WORKER
