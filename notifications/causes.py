"""Why a job failed, in the few categories an admin acts on (Platform → Connectors groups the
failing connectors by them). The runner names the cause from the exception it caught; a job
ended by someone else (the sweeper, the give-up of a job no worker took) is named from its
message, which those callers write themselves."""

from connectors import crypto
from connectors.wordpress import errors
from notifications.models import ConnectorHealth

Cause = ConnectorHealth.Cause

# Most specific first: the first class the exception is an instance of decides.
_BY_ERROR = [
    (errors.AuthenticationFailed, Cause.WRONG_KEY),
    # The platform cannot decrypt the stored key (FIELD_ENCRYPTION_KEY changed): ours to fix.
    (crypto.SecretUnreadable, Cause.INTERNAL),
    (errors.PluginMissing, Cause.PLUGIN_MISSING),
    (errors.SyncDisabled, Cause.PLUGIN_MISSING),
    (errors.RateLimited, Cause.RATE_LIMITED),
    (errors.SiteUnreachable, Cause.UNREACHABLE),
    (errors.RequestTimedOut, Cause.UNREACHABLE),
    (errors.TLSFailure, Cause.UNREACHABLE),
    (errors.BlockedAddress, Cause.UNREACHABLE),
    (errors.WordPressError, Cause.SITE_ERROR),
]


def cause_of(exc: BaseException) -> str:
    for error_class, cause in _BY_ERROR:
        if isinstance(exc, error_class):
            return cause
    return Cause.INTERNAL


def cause_from_message(message: str) -> str:
    """For jobs failed without an exception at hand (runner set-up checks, the sweeper)."""
    text = message.lower()
    if "field mapping" in text or "no entity type is enabled" in text:
        return Cause.MAPPING
    if "worker" in text:
        return Cause.WORKER
    return Cause.INTERNAL
