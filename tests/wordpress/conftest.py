import pytest

from connectors.wordpress.client import WordPressClient

SITE = "https://wp.example.org"
KEY = "test-sync-key-0123456789abcdef0123456789"
PUBLIC_IP = "93.184.216.34"


def public_resolver(host, port):
    return [PUBLIC_IP]


class Sleeps(list):
    """Records the delays the client asked to sleep instead of sleeping."""

    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def make_client(sleeps):
    clients = []

    def make(**kwargs):
        kwargs.setdefault("resolver", public_resolver)
        kwargs.setdefault("sleep", sleeps)
        client = WordPressClient(kwargs.pop("site_url", SITE), kwargs.pop("api_key", KEY), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client):
    return make_client()
