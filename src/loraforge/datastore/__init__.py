"""Dataset storage and processing, torch-free and database-free.

The server's `services/datasets/` package drives these modules; the engine and jobs only need
`normalized_path(dataset_id, version_id)`: the version's rows, one JSON example per line.
"""

from loraforge.datastore.paths import normalized_path, version_dir

__all__ = ["normalized_path", "version_dir"]
