"""The thresholds of the health rules: the `LORAFORGE_ALERT_*` settings as defaults, an operator's
change stored in `ops_settings` under `alert.<name>` (it survives restarts and every replica reads it).

A stored value is checked with the setting's own type and bounds, when it is written and again when it
is read: a value stored under older, looser bounds falls back to the default instead of breaking the
rules (logged).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import cache
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.platform import audit, ops_settings, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings
from loraforge.settings_ops import OperationsSettings

logger = logging.getLogger("loraforge.alerts")

PREFIX = "alert."


@dataclass(frozen=True)
class Rules:
    gpu_temperature_c: float | None  # None: each GPU's own slowdown temperature (85 °C without one)
    gpu_memory_percent: float
    disk_free_gb: float
    job_hung_minutes: float
    job_hung_action: str  # alert | stop
    node_failures: int
    node_failures_window_hours: float


NAMES: tuple[str, ...] = tuple(Rules.__dataclass_fields__)


def setting_name(name: str) -> str:
    return f"alert_{name}"


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    field = OperationsSettings.model_fields[setting_name(name)]
    annotation: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def check_value(name: str, value: Any) -> Any:
    """`value` as the setting `alert_<name>` would take it; ValueError with the reason otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and name != "node_failures":
        value = float(value)  # JSON has one number type: 90 is as good a temperature as 90.0
    try:
        return _adapter(name).validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None


def defaults(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, setting_name(name)) for name in NAMES}


def stored(session: Session) -> dict[str, Any]:
    """The operator's values that still pass the setting's checks (by rule name)."""
    values: dict[str, Any] = {}
    for name, value in ops_settings.read_all(session, PREFIX).items():
        if name not in NAMES:
            continue
        try:
            values[name] = check_value(name, value)
        except ValueError as exc:
            logger.warning("ignoring the stored alert threshold %s=%r: %s", name, value, exc)
    return values


def effective(session: Session, settings: Settings) -> Rules:
    return Rules(**{**defaults(settings), **stored(session)})


@dataclass(frozen=True)
class RulesView:
    values: dict[str, Any]  # what the rules use now
    defaults: dict[str, Any]  # the LORAFORGE_ALERT_* settings
    overridden: list[str]  # names an operator set


def view(session: Session, settings: Settings, *, actor: User) -> RulesView:
    ownership.ensure_role(actor, ownership.STAFF)
    return _view(session, settings)


def _view(session: Session, settings: Settings) -> RulesView:
    own = stored(session)
    return RulesView(
        values=asdict(effective(session, settings)), defaults=defaults(settings), overridden=sorted(own)
    )


def update(
    session: Session, settings: Settings, *, actor: User, changes: dict[str, Any], ip: str | None
) -> RulesView:
    """Store the given thresholds (None: back to the default); names not given stay as they are.
    Every bad value is named (422); nothing is stored unless all pass. Audited with before and after."""
    ownership.ensure_role(actor, ownership.STAFF)
    issues: list[FieldIssue] = []
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in NAMES:
            issues.append(FieldIssue(name, "not an alert rule"))
            continue
        try:
            checked[name] = None if value is None else check_value(name, value)
        except ValueError as exc:
            issues.append(FieldIssue(name, str(exc)))
    if issues:
        raise InvalidInput("invalid alert rules: " + ", ".join(i.field for i in issues), fields=issues)
    before = stored(session)
    for name, value in checked.items():
        ops_settings.put(session, PREFIX + name, value, actor=actor)
    session.flush()
    after = stored(session)
    if before != after:
        audit.record(
            session, action=AuditAction.ops_settings_changed, actor=actor, target_type="ops_settings",
            target_id="alert", ip=ip, details={"from": before, "to": after},
        )  # fmt: skip
    session.commit()
    return _view(session, settings)
