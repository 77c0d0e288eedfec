"""Each xdist worker's test database is a copy of one migrated template, not a migration run of
its own.

Migrating an empty PostgreSQL database takes seconds of CPU per worker, and the workers did it
all at once on two cores at the start of every run. Instead, the first worker to take a file
lock migrates a template database (named after a hash of every migration file, so a changed or
added migration gets a new one and the old one is dropped), and every worker clones it with
`CREATE DATABASE ... TEMPLATE`, which copies files and takes a fraction of a second. Django
then opens the clone as it opens a kept database (`--reuse-db`): `migrate` runs and finds
nothing to apply, so a template that missed a migration would still be brought up to date.

Only for PostgreSQL and when the database is not kept on purpose (`--reuse-db`): otherwise
pytest-django's own setup runs unchanged.
"""

import fcntl
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import pytest


def migrations_fingerprint() -> str:
    """A hash of what a migrated database is built from: Django's version, every app's migration
    files and the models of apps without migrations (those are created from their models)."""
    import django
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    digest = hashlib.sha256(django.get_version().encode())
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in sorted(loader.disk_migrations):
        module = sys.modules[type(loader.disk_migrations[key]).__module__]
        digest.update(repr(key).encode())
        digest.update(Path(module.__file__).read_bytes())
    for app in sorted(apps.get_app_configs(), key=lambda app: app.label):
        if app.label not in loader.migrated_apps and app.models_module is not None:
            digest.update(app.label.encode())
            digest.update(Path(app.models_module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def _cloning(config) -> bool:
    from django.conf import settings

    return settings.DATABASES["default"][
        "ENGINE"
    ] == "django.db.backends.postgresql" and not config.getvalue("reuse_db")


def _names(connection) -> tuple[str, str]:
    """(this worker's test database, the template's) for `connection`."""
    test_name = connection.creation._get_test_db_name()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base = test_name.removesuffix(f"_{worker}") if worker else test_name
    return test_name, f"{base}_tpl_{migrations_fingerprint()}"


def _build_template(connection, template: str) -> None:
    """Migrate a new database as Django builds a test database, under a name of its own, and
    rename it to `template` only once complete: a run killed half-way leaves no template that
    looks finished."""
    from django.conf import settings

    quote = connection.ops.quote_name
    building = f"{template}_{os.getpid()}"
    saved_name = connection.settings_dict["NAME"]
    saved_test_name = connection.settings_dict["TEST"]["NAME"]
    connection.settings_dict["TEST"]["NAME"] = building
    try:
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=False
        )
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved_name
        settings.DATABASES[connection.alias]["NAME"] = saved_name
        connection.settings_dict["TEST"]["NAME"] = saved_test_name
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {quote(building)} RENAME TO {quote(template)}")
        # Nobody works in the template: a session left connected would make every clone fail.
        cursor.execute(f"ALTER DATABASE {quote(template)} WITH ALLOW_CONNECTIONS false")


def _drop_database(cursor, quote, name: str, force: bool = False) -> None:
    cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}" + (" WITH (FORCE)" if force else ""))


@pytest.fixture(scope="session")
def django_db_keepdb(request) -> bool:
    """The clone made below is opened as a kept database (Django then neither creates nor
    drops it); `clone_test_database` drops it at the end of the run."""
    return bool(request.config.getvalue("reuse_db")) or _cloning(request.config)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    request, django_db_modify_db_settings_parallel_suffix, django_db_blocker
):
    """Runs before pytest-django's `django_db_setup`, after the xdist suffix is in the test
    database's name: make this worker's test database a fresh clone of the template."""
    if not _cloning(request.config):
        yield
        return
    from django.db import connections

    connection = connections["default"]
    quote = connection.ops.quote_name
    test_name, template = _names(connection)
    base = template.rsplit("_tpl_", 1)[0]
    lock_path = Path(tempfile.gettempdir()) / f"{base}_tpl.lock"
    with django_db_blocker.unblock(), open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with connection.creation._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [base.replace("_", r"\_") + r"\_tpl\_%"],
            )
            existing = {row[0] for row in cursor.fetchall()}
        if template not in existing:
            _build_template(connection, template)
        with connection.creation._nodb_cursor() as cursor:
            for stale in existing - {template}:  # built from migrations since changed
                _drop_database(cursor, quote, stale)
            _drop_database(cursor, quote, test_name)
            cursor.execute(f"CREATE DATABASE {quote(test_name)} TEMPLATE {quote(template)}")
    yield
    with django_db_blocker.unblock():
        connections.close_all()
        with connection.creation._nodb_cursor() as cursor:
            # A live server's request threads may still hold a connection of their own.
            _drop_database(cursor, quote, test_name, force=True)
