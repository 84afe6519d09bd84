"""Store: the SQLAlchemy database (migrated on first use) and the fsspec artifact store."""

from modelport.store.artifacts import ArtifactStore
from modelport.store.db import create_db_engine

__all__ = ["ArtifactStore", "create_db_engine"]
