"""Persistence: the schema, the engine, out-of-line blobs, search and migrations."""

from hub.store.blobs import BlobStore
from hub.store.database import Database

__all__ = ["BlobStore", "Database"]
