"""Errors that semsearch raises on purpose.

Every error a user can cause derives from :class:`SemsearchError`, so an entry
point (the CLI, the UI) catches one type and shows its message as one line::

    SemsearchError
    ├── ModelNotFoundError      a model name or folder that cannot be resolved
    ├── ModelConfigError        a model folder whose configuration we cannot use
    ├── InvalidInputError       arguments or inputs that a call refuses
    ├── CatalogError            the catalog database is unreachable or out of date
    │   └── CatalogUnavailableError   its server cannot be reached (transient)
    ├── StoreLockedError        the embedded vector store is open in another process
    ├── LeaseLostError          a worker's job was taken over (its lease expired)
    ├── IndexSwitchedError      a reindex switched models while an ingest ran
    ├── ReindexRefusedError     a reindex found a reason not to switch (its gate)
    └── StoreUnavailableError   the Qdrant server cannot be reached (transient)
        └── StoreRefusedError   it answered but refused the API key (not retried)

search.retry retries the transient ones with backoff.
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


class CatalogUnavailableError(CatalogError):
    """The catalog's server cannot be reached: transient, unlike an old schema.

    The message names the server and its address ("PostgreSQL at
    db:5432/semsearch"), without the user or password.
    """


class LeaseLostError(SemsearchError):
    """A worker's lease on its job expired, or another worker took the job over.

    The run stops without recording an outcome: the job is the next
    holder's, and its rerun is idempotent.
    """


class StoreRefusedError(StoreUnavailableError):
    """The Qdrant server answered but refused the API key: waiting cannot help."""


class IndexSwitchedError(SemsearchError):
    """A reindex made another collection live while this ingest wrote to the
    old one: nothing of the run is made active, and it runs again."""


class ReindexRefusedError(SemsearchError):
    """The reindex did not switch: the gate scored the new model lower, or
    the live index lacks points it would copy."""
