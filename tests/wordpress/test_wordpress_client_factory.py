"""connectors.wordpress_client.client_for: the factory the engine and diagnostics use."""

import pytest

from connectors.wordpress.errors import BlockedAddress
from connectors.wordpress_client import client_for
from wpsim import SimulatedSite, serve


def test_client_for_uses_the_connector_and_the_private_hosts_setting(connector_a, settings):
    site = SimulatedSite(records=20, seed=1, key=connector_a.api_key)
    with serve(site) as server:
        connector_a.site_url = server.url
        settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = True
        with client_for(connector_a, max_retries=0) as client:
            assert client.ping()["site_url"] == server.url
        settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
        with client_for(connector_a) as client, pytest.raises(BlockedAddress, match="loopback"):
            client.ping()
        assert connector_a.api_key not in repr(client_for(connector_a))
