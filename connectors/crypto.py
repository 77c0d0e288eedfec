"""Encryption at rest for connector secrets (Fernet: AES-128-CBC + HMAC-SHA256).

MultiFernet takes the comma-separated FIELD_ENCRYPTION_KEY list: the first key encrypts,
every key decrypts, so keys can be rotated without re-entering every connector's secret.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored ciphertext cannot be decrypted with the configured keys."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is not set")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The stored API key cannot be decrypted: FIELD_ENCRYPTION_KEY changed. "
            "Enter the key again in Settings → Authentication."
        ) from exc
