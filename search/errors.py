"""Errors that semsearch raises on purpose.

Every error a user can cause derives from :class:`SemsearchError`, so an entry
point (the CLI, the UI) catches one type and shows its message as one line::

    SemsearchError
    ├── ModelNotFoundError      a model name or folder that cannot be resolved
    ├── ModelConfigError        a model folder whose configuration we cannot use
    ├── InvalidInputError       arguments or inputs that a call refuses
    ├── CatalogError            the catalog database is unreachable or out of date
    ├── StoreLockedError        the embedded vector store is open in another process
    └── StoreUnavailableError   the Qdrant server cannot be reached or refuses us
"""


class SemsearchError(Exception):
    """Base class of the errors meant to be shown to a user as they are."""


class ModelNotFoundError(SemsearchError):
    """The model is neither registered, installed, a local folder nor reachable."""


class ModelConfigError(SemsearchError):
    """The model folder exists but its configuration cannot be used."""


class InvalidInputError(SemsearchError, ValueError):
    """An argument or input was refused; the message says which and why."""


class CatalogError(SemsearchError):
    """The catalog cannot be reached or its schema is not the newest."""


class StoreLockedError(SemsearchError):
    """The embedded store's collection is held open by another process."""


class StoreUnavailableError(SemsearchError):
    """The Qdrant server cannot be reached, or it refused the credentials."""
