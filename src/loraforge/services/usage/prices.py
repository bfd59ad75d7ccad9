"""Prices that turn usage into cost: per GPU-hour and per CPU-hour, in one currency.

An admin sets them at run time (`ops_settings` keys `price.gpu_hour`, `price.cpu_hour`,
`price.currency`); a key never set falls back to `LORAFORGE_PRICE_*`. With neither price set, usage
has no cost (None), which the reports show as "no prices configured" rather than as 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.platform import audit, ops_settings
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

PREFIX = "price."
KEYS = ("gpu_hour", "cpu_hour", "currency")
CURRENCY_MAX = 8


@dataclass(frozen=True)
class Prices:
    gpu_hour: float | None
    cpu_hour: float | None
    currency: str

    def cost(self, *, gpu_seconds: float, cpu_seconds: float) -> float | None:
        """What this much use costs; None when no price is set (a price left unset counts as free)."""
        if self.gpu_hour is None and self.cpu_hour is None:
            return None
        total = (self.gpu_hour or 0.0) * gpu_seconds / 3600.0 + (self.cpu_hour or 0.0) * cpu_seconds / 3600.0
        return round(total, 6)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def defaults(settings: Settings) -> Prices:
    return Prices(settings.price_gpu_hour, settings.price_cpu_hour, settings.price_currency)


def current(session: Session, settings: Settings) -> Prices:
    """The prices in force: each stored value, else the setting."""
    stored = ops_settings.read_all(session, PREFIX)
    base = defaults(settings)
    gpu, cpu, currency = stored.get("gpu_hour"), stored.get("cpu_hour"), stored.get("currency")
    return Prices(
        gpu_hour=float(gpu) if isinstance(gpu, int | float) else base.gpu_hour,
        cpu_hour=float(cpu) if isinstance(cpu, int | float) else base.cpu_hour,
        currency=currency if isinstance(currency, str) and currency else base.currency,
    )


def update(
    session: Session,
    settings: Settings,
    *,
    actor: User,
    gpu_hour: float | None,
    cpu_hour: float | None,
    currency: str | None,
    ip: str | None,
) -> Prices:
    """Store the prices (None: back to the `LORAFORGE_PRICE_*` default), audited; commits."""
    issues = [
        FieldIssue(field=name, message="must be a finite number of at least 0")
        for name, value in (("gpu_hour", gpu_hour), ("cpu_hour", cpu_hour))
        if value is not None and not (0.0 <= value < float("inf"))
    ]
    if currency is not None and not (0 < len(currency.strip()) <= CURRENCY_MAX):
        issues.append(FieldIssue(field="currency", message=f"1 to {CURRENCY_MAX} characters"))
    if issues:
        raise InvalidInput("invalid prices", code="invalid_prices", fields=issues)
    before = current(session, settings)
    values: dict[str, Any] = {
        "gpu_hour": gpu_hour,
        "cpu_hour": cpu_hour,
        "currency": currency.strip() if currency is not None else None,
    }
    for key, value in values.items():
        ops_settings.put(session, PREFIX + key, value, actor=actor)
    session.flush()
    after = current(session, settings)
    audit.record(
        session, action=AuditAction.ops_settings_changed, actor=actor, target_type="prices", ip=ip,
        details={"from": before.as_dict(), "to": after.as_dict()},
    )  # fmt: skip
    session.commit()
    return after
