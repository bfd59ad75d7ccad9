"""GET /api/jobs/{id}/metrics?downsample=2000 on a run with 1,000,000 metric points. Prints one JSON object.

The points are stored as the scheduler stores them: rows in `job_events` (SQLite in a temp data dir),
then `metric_store.sync` builds the job's metric file from them (the scheduler's hook). The endpoint is
timed through the full app (auth, access check, catch-up query, numpy read + downsample, response model)
with Starlette's TestClient; the first call is a warm-up. Goal: p95 <= 100 ms.

Usage: .venv/bin/python bench/metrics_downsample.py [--points 1000000] [--calls 20] [--target 2000]
       [--reference]   also time the old path (every event's JSON from job_events) once
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert

from loraforge.app import create_app
from loraforge.db.migrate import migrate
from loraforge.db.models import Job, JobEvent, User
from loraforge.db.session import Database
from loraforge.services.jobs import metric_store, reads
from loraforge.settings import Settings

PASSWORD = "bench-password-123"  # noqa: S105  (a throw-away admin in a temp dir)


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        jwt_secret=SecretStr("bench-signing-key-" + "x" * 32),
        admin_username="admin",
        admin_email="admin@example.com",
        admin_password=SecretStr(PASSWORD),
        scheduler_enabled=False,
        web_dist_dir=data_dir / "no-dist",
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )


def _seed(settings: Settings, points: int) -> tuple[int, float, float]:
    """A job with `points` metric events (+ an eval event every 1000 steps); returns the job id and the
    seconds spent inserting the rows and building the metric file."""
    database = Database(settings.sqlalchemy_url)
    rng = random.Random(0)
    with database.session() as session:
        owner = session.query(User).filter_by(username="admin").one()
        job = Job(owner_id=owner.id, name="million", spec={}, status="succeeded")
        session.add(job)
        session.commit()
        job_id = job.id
        started = time.perf_counter()
        seq, batch = 0, []
        for step in range(1, points + 1):
            seq += 1
            loss = 2.0 * math.exp(-step / points * 3) + rng.random() * 0.1
            batch.append({
                "job_id": job_id, "seq": seq, "type": "metric", "ts": 0.0,
                "data": {"step": step, "loss": loss, "lr": 1e-4, "grad_norm": 0.5, "epoch": step / points,
                         "tokens_per_s": 12000.0, "progress": step / points, "eta_s": 1.0, "elapsed_s": 2.0},
            })  # fmt: skip
            if step % 1000 == 0:
                seq += 1
                batch.append({"job_id": job_id, "seq": seq, "type": "eval", "ts": 0.0,
                              "data": {"step": step, "eval_loss": loss}})  # fmt: skip
            if len(batch) >= 50_000:
                session.execute(insert(JobEvent), batch)
                batch = []
        if batch:
            session.execute(insert(JobEvent), batch)
        session.commit()
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        metric_store.sync(settings, session, job_id)
        built = time.perf_counter() - started
    database.dispose()
    return job_id, inserted, built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--target", type=int, default=2000)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lf-bench-metrics-") as tmp:
        settings = _settings(Path(tmp) / "data")
        migrate(settings.sqlalchemy_url)
        with TestClient(create_app(settings)) as client:
            login = client.post("/api/auth/login", json={"username_or_email": "admin", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            job_id, inserted_s, built_s = _seed(settings, args.points)
            url = f"/api/jobs/{job_id}/metrics"
            params = {"downsample": args.target}
            first = client.get(url, params=params, headers=headers)
            assert first.status_code == 200, first.text
            body = first.json()
            timings = []
            for _ in range(args.calls):
                started = time.perf_counter()
                response = client.get(url, params=params, headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            reference_ms = None
            if args.reference:
                database = Database(settings.sqlalchemy_url)
                with database.session() as session:
                    started = time.perf_counter()
                    reads.metrics_from_events(session, job_id=job_id, target=args.target)
                    reference_ms = round((time.perf_counter() - started) * 1000, 1)
                database.dispose()
        timings.sort()
        result = {
            "bench": "metrics_downsample",
            "points": args.points,
            "downsample": args.target,
            "returned_points": len(body["points"]),
            "eval_points": len(body["eval"]),
            "calls": args.calls,
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[max(0, math.ceil(0.95 * len(timings)) - 1)], 1),
            "max_ms": round(timings[-1], 1),
            "goal_p95_ms": 100,
            "metric_file_bytes": metric_store.path_of(settings, job_id).stat().st_size
            if metric_store.path_of(settings, job_id).exists()
            else None,
            "seed_insert_s": round(inserted_s, 1),
            "metric_file_build_s": round(built_s, 1),
            "reference_json_path_ms": reference_ms,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
