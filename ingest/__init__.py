"""semsearch's ingest worker: files to chunks, embeddings and catalog rows.

The walker, loaders and job loop arrive with the ingest work (issue 3).
"""
