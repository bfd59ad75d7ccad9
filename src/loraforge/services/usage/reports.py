"""Usage reports from `job_usage`: one user's month (with their attempts, last 12 months, storage
and quota), every user's month for admins (JSON or CSV), and the month's totals for the operators'
summary. Months are `YYYY-MM` in UTC, the month an attempt started in.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Job, JobUsage, Node, User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.usage import prices as usage_prices
from loraforge.services.usage import quotas, storage
from loraforge.settings import Settings

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_ITEMS = 1000  # attempts listed for one user's month (newest first); the totals count them all
CSV_COLUMNS = ("user_id", "username", "jobs", "wall_hours", "cpu_hours", "gpu_hours", "tokens",
               "storage_bytes", "cost", "currency")  # fmt: skip


def parse_month(month: str | None, *, field: str = "query.month") -> str:
    """`month` checked (YYYY-MM), or the current UTC month."""
    if month is None:
        return quotas.month_of(utcnow())
    if not MONTH.match(month):
        raise InvalidInput(
            "month must be YYYY-MM", code="invalid_month", fields=[FieldIssue(field, "expected YYYY-MM")]
        )
    return month


def shift_month(month: str, delta: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _hours(seconds: Any) -> float:
    return round(float(seconds or 0.0) / 3600.0, 6)


def _cost(total: Any, priced: Any) -> float | None:
    # None when no attempt of the set had prices to be costed with (not "free").
    return round(float(total or 0.0), 6) if priced else None


def _aggregates() -> list[Any]:
    """Totals over a set of usage rows; `jobs` counts distinct jobs (a deleted job's rows count each)."""
    return [
        (
            func.count(func.distinct(JobUsage.job_id))
            + func.sum(case((JobUsage.job_id.is_(None), 1), else_=0))
        ),
        func.sum(JobUsage.wall_seconds),
        func.sum(JobUsage.cpu_seconds),
        func.sum(JobUsage.gpu_seconds),
        func.max(JobUsage.peak_memory_bytes),
        func.sum(JobUsage.tokens),
        func.sum(JobUsage.cost),
        func.count(JobUsage.cost),
    ]


def _totals(values: Any, currency: str) -> dict[str, Any]:
    jobs, wall, cpu, gpu, peak, tokens, cost, priced = values if values is not None else (0,) * 8
    return {
        "jobs": int(jobs or 0),
        "wall_hours": _hours(wall),
        "cpu_hours": _hours(cpu),
        "gpu_hours": _hours(gpu),
        "peak_memory_bytes": int(peak or 0),
        "tokens": int(tokens or 0),
        "cost": _cost(cost, priced),
        "currency": currency,
    }


def month_totals(session: Session, settings: Settings, month: str) -> dict[str, Any]:
    """`{month, jobs, gpu_hours, cpu_hours, cost, currency}` over every user (operators' summary)."""
    currency = usage_prices.current(session, settings).currency
    values = session.execute(select(*_aggregates()).where(JobUsage.month == month)).one()
    totals = _totals(values, currency)
    return {"month": month, **{k: totals[k] for k in ("jobs", "gpu_hours", "cpu_hours", "cost", "currency")}}


def _item(row: JobUsage, job_name: str | None, node_name: str | None) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "job_name": job_name,
        "attempt": row.attempt,
        "node_name": node_name,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "wall_seconds": round(row.wall_seconds, 3),
        "cpu_hours": _hours(row.cpu_seconds),
        "gpu_hours": _hours(row.gpu_seconds),
        "gpu_count": row.gpu_count,
        "peak_memory_bytes": row.peak_memory_bytes,
        "tokens": row.tokens,
        "cost": row.cost,
    }


def mine(session: Session, settings: Settings, *, user: User, month: str) -> dict[str, Any]:
    """The caller's usage in `month`: totals, attempts, the last 12 months, storage and quota."""
    currency = usage_prices.current(session, settings).currency
    mine_in_month = (JobUsage.owner_id == user.id, JobUsage.month == month)
    totals = _totals(session.execute(select(*_aggregates()).where(*mine_in_month)).one(), currency)
    rows = session.execute(
        select(JobUsage, Job.name, Node.name)
        .outerjoin(Job, Job.id == JobUsage.job_id)
        .outerjoin(Node, Node.id == JobUsage.node_id)
        .where(*mine_in_month)
        .order_by(JobUsage.started_at.desc(), JobUsage.id.desc())
        .limit(MAX_ITEMS)
    ).all()
    first = shift_month(month, -11)
    by_month = {
        m: (gpu, cpu, cost, priced)
        for m, gpu, cpu, cost, priced in session.execute(
            select(
                JobUsage.month,
                func.sum(JobUsage.gpu_seconds),
                func.sum(JobUsage.cpu_seconds),
                func.sum(JobUsage.cost),
                func.count(JobUsage.cost),
            )
            .where(JobUsage.owner_id == user.id, JobUsage.month >= first, JobUsage.month <= month)
            .group_by(JobUsage.month)
        ).all()
    }
    months = []
    for i in range(12):
        m = shift_month(first, i)
        gpu, cpu, cost, priced = by_month.get(m, (0.0, 0.0, None, 0))
        months.append(
            {"month": m, "gpu_hours": _hours(gpu), "cpu_hours": _hours(cpu), "cost": _cost(cost, priced)}
        )
    return {
        "month": month,
        "totals": totals,
        "storage_bytes": storage.used_bytes(settings, session, user.id),
        "quota": {**quotas.effective(session, settings, user.id), "action": settings.quota_action},
        "months": months,
        "items": [_item(row, job_name, node_name) for row, job_name, node_name in rows],
        "items_total": session.scalar(select(func.count()).select_from(JobUsage).where(*mine_in_month)) or 0,
    }


def all_users(session: Session, settings: Settings, *, month: str) -> dict[str, Any]:
    """Every user's usage in `month` (users with no usage too: their storage counts), by username."""
    currency = usage_prices.current(session, settings).currency
    per_user = {
        owner: values
        for owner, *values in session.execute(
            select(JobUsage.owner_id, *_aggregates())
            .where(JobUsage.month == month)
            .group_by(JobUsage.owner_id)
        ).all()
    }
    rows: list[dict[str, Any]] = []
    for user_id, username in session.execute(select(User.id, User.username).order_by(User.username)).all():
        totals = _totals(per_user.get(user_id), currency)
        rows.append({
            "user_id": user_id,
            "username": username,
            **{k: totals[k] for k in ("jobs", "wall_hours", "cpu_hours", "gpu_hours", "tokens", "cost")},
            "storage_bytes": storage.used_bytes(settings, session, user_id),
        })  # fmt: skip
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    summed = {
        "jobs": sum(r["jobs"] for r in rows),
        "wall_hours": round(sum(r["wall_hours"] for r in rows), 6),
        "cpu_hours": round(sum(r["cpu_hours"] for r in rows), 6),
        "gpu_hours": round(sum(r["gpu_hours"] for r in rows), 6),
        "tokens": sum(r["tokens"] for r in rows),
        "storage_bytes": sum(r["storage_bytes"] for r in rows),
        "cost": round(sum(costs), 6) if costs else None,
    }
    return {"month": month, "rows": rows, "totals": summed, "currency": currency}


def as_csv(report: dict[str, Any]) -> str:
    """The admin report as CSV: one line per user, then a `total` line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    currency = report["currency"]

    def cells(row: dict[str, Any], user_id: Any, username: str) -> list[Any]:
        values = [row[c] for c in CSV_COLUMNS[2:-1]]
        return [user_id, _safe(username), *("" if v is None else v for v in values), currency]

    for row in report["rows"]:
        writer.writerow(cells(row, row["user_id"], row["username"]))
    writer.writerow(cells(report["totals"], "", "total"))
    return out.getvalue()


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (usernames are restricted, but be sure)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
