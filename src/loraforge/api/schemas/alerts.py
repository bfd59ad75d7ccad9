"""Alerts (health rules' findings) and the rules' thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from loraforge.api.schemas.common import RequestModel
from loraforge.settings_ops import OperationsSettings


class AlertPublic(BaseModel):
    id: int
    rule: str = Field(
        description=(
            "gpu_temperature | gpu_throttle | gpu_memory | disk_free | node_lost | node_failures | job_hung"
        )
    )
    key: str = Field(description="The condition (rule + node, GPU or job): raised once while unresolved.")
    severity: Literal["warning", "critical"]
    status: Literal["open", "acknowledged", "resolved"]
    title: str
    message: str
    node_id: int | None
    node_name: str | None
    job_id: int | None
    data: dict[str, Any] = Field(description="The reading that raised it (rule-specific numbers).")
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="Username.")
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="Username; null with resolved_at set: cleared by itself.")
    resolved_automatically: bool
    delivery: dict[str, Any] = Field(
        description=(
            "{notified, webhook, email, webhook_error?, email_error?, resolution: {the same}}; "
            "webhook/email: pending | sent | failed | none (not configured)."
        )
    )


class AlertPage(BaseModel):
    items: list[AlertPublic]
    total: int
    open_count: int = Field(description="Alerts open and not yet acknowledged (all pages).")


def _bounds(name: str) -> dict[str, Any]:
    """The LORAFORGE_ALERT_<NAME> setting's own bounds: the API accepts what the environment does."""
    bounds: dict[str, Any] = {}
    for item in OperationsSettings.model_fields[f"alert_{name}"].metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(item, attr, None) is not None:
                bounds[attr] = getattr(item, attr)
    return bounds


def _doc(name: str) -> str:
    return str(OperationsSettings.model_fields[f"alert_{name}"].description or "")


class AlertRules(BaseModel):
    gpu_temperature_c: float | None = Field(description=_doc("gpu_temperature_c"))
    gpu_memory_percent: float = Field(description=_doc("gpu_memory_percent"))
    disk_free_gb: float = Field(description=_doc("disk_free_gb"))
    job_hung_minutes: float = Field(description=_doc("job_hung_minutes"))
    job_hung_action: Literal["alert", "stop"] = Field(description=_doc("job_hung_action"))
    node_failures: int = Field(description=_doc("node_failures"))
    node_failures_window_hours: float = Field(description=_doc("node_failures_window_hours"))


class AlertRulesView(BaseModel):
    values: AlertRules = Field(description="What the rules use now.")
    defaults: AlertRules = Field(description="The LORAFORGE_ALERT_* settings (used where nothing is set).")
    overridden: list[str] = Field(description="Names set by an operator (the rest are defaults).")


class AlertRulesUpdate(RequestModel):
    """Only the names given change; `null` puts one back to its default."""

    gpu_temperature_c: float | None = Field(default=None, **_bounds("gpu_temperature_c"))
    gpu_memory_percent: float | None = Field(default=None, **_bounds("gpu_memory_percent"))
    disk_free_gb: float | None = Field(default=None, **_bounds("disk_free_gb"))
    job_hung_minutes: float | None = Field(default=None, **_bounds("job_hung_minutes"))
    job_hung_action: Literal["alert", "stop"] | None = None
    node_failures: int | None = Field(default=None, **_bounds("node_failures"))
    node_failures_window_hours: float | None = Field(default=None, **_bounds("node_failures_window_hours"))

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}
