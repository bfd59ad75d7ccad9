"""Response views shared by the dataset route modules: a dataset with its current version's details,
and a dataset created together with its first (or new) version."""

from __future__ import annotations

from sqlalchemy.orm import Session

from loraforge.api.schemas.datasets import DatasetCreated, DatasetPublic, DatasetVersionPublic
from loraforge.db.models import Dataset, DatasetVersion

# DatasetPublic fields read straight off the Dataset row; the others describe its current version.
_DATASET_COLUMNS = (
    "id",
    "owner_id",
    "name",
    "description",
    "format",
    "rows",
    "valid_rows",
    "invalid_rows",
    "current_version_id",
    "size_bytes",
    "created_at",
    "updated_at",
)


def dataset_view(dataset: Dataset, version: DatasetVersion | None) -> DatasetPublic:
    return DatasetPublic.model_validate(
        {
            **{name: getattr(dataset, name) for name in _DATASET_COLUMNS},
            "errors": version.errors if version else [],
            "current_version": version.number if version else None,
            "detection": version.detection if version else {},
            "mapping": version.mapping if version else {},
        }
    )


def current_view(session: Session, dataset: Dataset) -> DatasetPublic:
    """The dataset with its current version (loaded here)."""
    version = session.get(DatasetVersion, dataset.current_version_id) if dataset.current_version_id else None
    return dataset_view(dataset, version)


def created_view(dataset: Dataset, version: DatasetVersion) -> DatasetCreated:
    return DatasetCreated(
        dataset=dataset_view(dataset, version), version=DatasetVersionPublic.model_validate(version)
    )
