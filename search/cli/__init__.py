"""The ``semsearch`` command line: a thin layer over the library.

Each command group lives in its own module with a ``register(subparsers)``
function; heavy imports (torch, the model) happen inside the commands, so
``semsearch --help`` answers at once.
"""
