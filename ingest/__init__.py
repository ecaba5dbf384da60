"""semsearch's ingest worker: files to chunks, embeddings and catalog rows.

:mod:`ingest.walk` finds the files under the paths a user names;
:mod:`ingest.loaders` turns one file into a :class:`~ingest.documents.LoadedDocument`
(metadata and contiguous text segments), raising
:class:`~ingest.documents.LoadError` for a file it cannot read.
"""
