"""semsearch's Streamlit UI: ``semsearch ui`` runs ``ui/app.py``.

The pages render and call the ``search`` and ``ingest`` packages; the
encoder, catalog and store are opened once per server process
(:mod:`ui.resources`), never by a page itself.
"""
