"""Warren's one error family: every failure a user can meet is one sentence, str(error)."""


class WarrenError(Exception):
    """A failure explained in one sentence that says what happened (and what was not done)."""


class SettingsError(WarrenError):
    """A setting has a value Warren cannot use."""


class BrokerError(WarrenError):
    """The broker could not be asked, or refused what was asked."""


class BrokerUnreachable(BrokerError):
    """No answer: connection refused, DNS failure, or timeout."""


class Unauthorized(BrokerError):
    """401: the broker does not accept the user name and password."""


class Forbidden(BrokerError):
    """401/403 for a known user: it lacks the user tag or the vhost permission."""


class ConfirmationRequired(WarrenError):
    """The action is allowed but has a cost the user must accept first."""


class ReadOnly(WarrenError):
    """Warren's rule (or WARREN_READ_ONLY) does not let this user change anything."""


class NotFound(BrokerError):
    """404: the vhost, queue, exchange or connection does not exist."""


class PreconditionFailed(BrokerError):
    """406: what was asked conflicts with what exists (for example, different queue arguments)."""


class ServerError(BrokerError):
    """5xx, or an answer Warren cannot read."""


class VhostMissing(NotFound):
    """The configured virtual host does not exist, so nothing in it can be found."""


class TenantExchangeMissing(NotFound):
    """The configured tenant exchange does not exist, so no queue can be a tenant queue."""
