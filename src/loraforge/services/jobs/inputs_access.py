"""May this job's owner still read what the job trains on? Asked whenever a job is about to run, not
only when it was created: a draft is started, a failed job resumed, a queued job launched.

A spec pins registered models (`<name>@v<number>` in `model_name_or_path` / `adapter_name_or_path`)
and datasets (`dataset`, `validation_dataset`) when the job is created, with the access its owner had
then. Access can end later: the model's owner stops sharing it, a role is taken away, the account is
disabled. A job must not train on data or weights its owner may no longer read (and then hand the
result to its owner), so each of those moments checks again through the models' and datasets' own
read rules (`services.models.catalog.can_read`, `services.datasets.catalog.get_dataset`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, User
from loraforge.errors import Forbidden, NotFound
from loraforge.services.datasets import catalog as dataset_catalog
from loraforge.services.models import resolution
from loraforge.services.models.catalog import can_read

MODEL_KEYS = ("model_name_or_path", "adapter_name_or_path")


def _dataset_ids(job: Job) -> list[tuple[str, int]]:
    spec: dict[str, Any] = job.spec or {}
    found: list[tuple[str, int]] = []
    if job.dataset_id is not None:
        found.append(("dataset", job.dataset_id))
    validation = spec.get("validation_dataset")
    if isinstance(validation, int) and not isinstance(validation, bool):
        found.append(("validation_dataset", validation))
    return found


def ensure_inputs_readable(session: Session, job: Job, *, owner: User | None = None) -> None:
    """Raise Forbidden (`owner_disabled`, `model_not_accessible`, `dataset_not_accessible`) unless the
    job's owner may read every registered model and dataset the job's spec pins."""
    owner = owner if owner is not None else session.get(User, job.owner_id)
    if owner is None or owner.disabled:
        raise Forbidden("the job's owner account is disabled", code="owner_disabled")
    spec: dict[str, Any] = job.spec or {}
    for key in MODEL_KEYS:
        # None for demo-tiny, hub ids and (staff's) server folders: nothing registered to re-check.
        found = resolution.pinned_version(session, spec.get(key))
        if found is not None and not can_read(owner, found[0]):
            raise Forbidden(
                f"{key} names the registered model {spec[key]!r}, which the job's owner may no longer "
                "read (it is no longer shared, or the role that allowed it was taken away)",
                code="model_not_accessible",
            )
    for key, dataset_id in _dataset_ids(job):
        try:
            dataset_catalog.get_dataset(session, actor=owner, dataset_id=dataset_id)
        except NotFound:
            raise Forbidden(
                f"{key} names dataset {dataset_id}, which the job's owner may no longer read",
                code="dataset_not_accessible",
            ) from None
