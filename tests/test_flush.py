"""The flush after each transactional test (tests/conftest.py `_flush_by_delete`) leaves every
table empty, whether a test wrote a few rows (deleted) or thousands (truncated)."""

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from accounts.models import Organisation


@pytest.mark.django_db(transaction=True)
def test_the_flush_empties_every_table_small_or_big(alice, connector_a):
    Organisation.objects.bulk_create(
        Organisation(name=f"Org {n}", slug=f"org-{n}") for n in range(6000)
    )
    assert connection.vendor != "postgresql" or "DELETE FROM" in "".join(
        connection.ops.sql_flush(None, ["accounts_organisation"])
    )
    call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)
    left = [model.__name__ for model in apps.get_models() if model.objects.exists()]
    assert left == []
