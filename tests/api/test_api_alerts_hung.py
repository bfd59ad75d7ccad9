"""A hung engine, for real: a tiny training job whose engine process group is frozen with SIGSTOP
stops emitting events, the hung-job rule raises an alert (delivered to a real webhook receiver and a
real SMTP server), and the alert resolves by itself once the engine runs again (SIGCONT). With the
hung action `stop`, the next freeze also stops the job gracefully through the jobs lifecycle."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_helpers import Receiver, alerts_of, evaluate, wait
from api_helpers import Api
from fastapi import FastAPI
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for
from smtp_server import SmtpServer

from loraforge.db.models import Job
from loraforge.settings import Settings

pytestmark = pytest.mark.engine_heavy


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, receiver: Receiver, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={
            "alert_job_hung_minutes": 0.05,  # 3 s without an engine event
            "outbound_allow": "127.0.0.1",
            "alert_webhook_url": receiver.url("/ops"),
            **smtp.settings(),
        }
    )


def _pid(app: FastAPI, job_id: int) -> int:
    with app.state.db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.pid is not None
        return job.pid


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the engine is its own process group (start_new_session)


def _hung_alert(app: FastAPI, job_id: int, status: str) -> bool:
    evaluate(app)
    return any(a.status == status for a in alerts_of(app, f"job_hung:{job_id}"))


def test_a_frozen_engine_raises_a_hung_alert_that_clears_and_can_stop_the_job(
    api: Api, app: FastAPI, demo_model: Path, receiver: Receiver, smtp: SmtpServer
) -> None:
    client = api.client
    alice = api.account("alice")
    operator = api.account("olga", role="operator")
    dataset = sample_dataset(client, alice)
    job = create_job(client, alice, tiny_spec(dataset["id"], max_steps=100_000), start=True, name="frozen")
    job_id = job["id"]
    wait_for(client, alice, job_id, {"running"})
    pid = _pid(app, job_id)
    try:

        def trained() -> bool:
            events = client.get(f"/api/jobs/{job_id}/events", headers=alice.headers).json()["items"]
            return any(e["type"] == "metric" for e in events)

        wait(trained, "the first training step", timeout=60)
        assert not alerts_of(app, f"job_hung:{job_id}")

        _signal(pid, signal.SIGSTOP)
        wait(lambda: _hung_alert(app, job_id, "open"), "the hung alert")
        (alert,) = alerts_of(app, f"job_hung:{job_id}")
        assert alert.rule == "job_hung" and alert.job_id == job_id and "frozen" in alert.title
        assert alert.data["action"] == "alert"
        wait(lambda: [b for b in receiver.bodies("/ops") if b["alert"]["job_id"] == job_id], "the webhook")
        mail = smtp.wait_for(lambda m: "frozen" in m.subject)
        assert "reported nothing" in mail.body

        _signal(pid, signal.SIGCONT)
        wait(lambda: _hung_alert(app, job_id, "resolved"), "the alert to resolve itself", timeout=60)
        (alert,) = alerts_of(app, f"job_hung:{job_id}")
        assert alert.resolved_by is None
        assert client.get(f"/api/jobs/{job_id}", headers=alice.headers).json()["status"] == "running"

        # The operator makes hung jobs stop: the next freeze ends in a graceful stop.
        changed = client.put("/api/alerts/rules", json={"job_hung_action": "stop"}, headers=operator.headers)
        assert changed.status_code == 200, changed.text
        _signal(pid, signal.SIGSTOP)

        def stopping() -> bool:
            evaluate(app)  # (or the server's own operations loop: whichever runs the rules first stops it)
            return bool(
                client.get(f"/api/jobs/{job_id}", headers=alice.headers).json()["status"] == "stopping"
            )

        wait(stopping, "the stop of the hung job")
        _signal(pid, signal.SIGCONT)  # the pending SIGTERM lands: checkpoint, exit
        stopped = wait_for(client, alice, job_id, {"stopped"}, timeout=60)
        assert stopped["error"]["code"] == "stopped"
        stops = api.audit(api.admin(), action="job.stopped")
        assert stops[0]["actor_username"] is None and "hung" in stops[0]["details"]["reason"]
        evaluate(app)
        assert [a.status for a in alerts_of(app, f"job_hung:{job_id}")] == ["resolved", "resolved"]
    finally:
        _signal(pid, signal.SIGCONT)
        status = client.get(f"/api/jobs/{job_id}", headers=alice.headers).json()["status"]
        if status not in ("stopped", "succeeded", "failed", "cancelled"):
            client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
