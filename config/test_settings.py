"""Settings for the test suite: the production settings with test-only values filled in.

DATABASE_URL / REDIS_URL come from the environment (CI points them at the machine's
PostgreSQL and Redis); without them the suite runs on SQLite for quick local loops.
"""

import os

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
