"""The machine the server runs on, as any signed-in user may see it."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from loraforge.api.deps import CurrentUser, SettingsDep
from loraforge.api.schemas.system import HostInfo
from loraforge.services.platform import host

router = APIRouter(prefix="/system", tags=["system"])


@router.get("/host", response_model=HostInfo, operation_id="system_get_host")
def get_host(user: CurrentUser, settings: SettingsDep) -> HostInfo:
    """CPU count and use, memory, GPUs (NVML) and the data directory's free disk, read now.

    Every signed-in user: it tells how busy the machine is before they queue a job, and nothing
    about other users' work.
    """
    return HostInfo.model_validate(asdict(host.snapshot(settings.data_dir)))
