"""KTO jobs through the REST API: a KTO dataset is accepted with stage kto, refused combinations
name their key, and the engine's data files carry the label the engine reads (no engine run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_helpers import Api, assert_error
from dataset_helpers import create, jsonl
from fastapi import FastAPI
from job_helpers import create_job, sample_dataset, tiny_spec

from loraforge.engine.spec_loading import load_spec
from loraforge.services.jobs import specs as job_specs
from loraforge.settings import Settings

KTO_ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}." if i % 2 == 0 else "I will not say."},
        ],
        "label": i % 2 == 0,
    }
    for i in range(12)
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False  # nothing launches: the API and the engine spec alone
    return settings


def _post(api: Api, account, spec):  # type: ignore[no-untyped-def]
    return api.client.post("/api/jobs", json={"name": "kto", "spec": spec}, headers=account.headers)


def test_kto_dataset_trains_with_stage_kto(
    api: Api, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = create(api.client, alice, "kto.jsonl", jsonl(KTO_ROWS))["dataset"]
    assert dataset["format"] == "kto"
    spec = tiny_spec(dataset["id"], stage="kto", pref_beta=0.2, kto_rejected_weight=1.5)
    job = create_job(api.client, alice, spec)
    stored = job["spec"]
    assert stored["stage"] == "kto" and stored["kto_rejected_weight"] == 1.5

    from loraforge.db.models import DatasetVersion

    run_dir = settings.runs_dir / "kto-probe"
    with app.state.db.session() as session:
        version = session.get(DatasetVersion, stored["dataset_version"])
        assert version is not None
        engine = job_specs.engine_spec(settings, spec=stored, version=version, run_dir=run_dir)
    assert engine["columns"]["kto_tag"] == "label" and not engine["ranking"]
    rows = [json.loads(x) for x in (run_dir / "data" / "train.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [r["label"] for r in KTO_ROWS]
    parsed = load_spec(engine)
    assert (parsed.stage, parsed.pref_beta, parsed.kto_chosen_weight) == ("kto", 0.2, 1.0)


def test_kto_refuses_what_cannot_work_naming_the_key(api: Api) -> None:
    alice = api.account("alice")
    kto = create(api.client, alice, "kto.jsonl", jsonl(KTO_ROWS))["dataset"]
    for key in ("packing", "neat_packing"):
        error = assert_error(
            _post(api, alice, tiny_spec(kto["id"], stage="kto", **{key: True})),
            422, "invalid_spec", f"body.spec.{key}",
        )  # fmt: skip
        assert "kto" in error["details"][0]["message"]
    sft = sample_dataset(api.client, alice)
    error = assert_error(
        _post(api, alice, tiny_spec(sft["id"], stage="kto")), 422, "invalid_spec", "body.spec.dataset"
    )
    assert "KTO dataset" in error["details"][0]["message"]


def test_schema_offers_the_kto_keys(api: Api) -> None:
    alice = api.account("alice")
    body = api.client.get("/api/jobs/spec-schema", headers=alice.headers).json()
    props = body["schema"]["properties"]
    assert "kto" in json.dumps(props["stage"])
    for key in ("pref_beta", "kto_chosen_weight", "kto_rejected_weight"):
        assert key in body["groups"]["advanced"], key
        assert key in props
