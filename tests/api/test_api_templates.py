"""Templates: CRUD with sharing and ownership, validation like job specs, YAML export/import, jobs from
a template, and a job's spec as YAML."""

from __future__ import annotations

from typing import Any

import yaml
from api_helpers import Account, Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec

SPEC: dict[str, Any] = {
    "model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct",
    "template": "qwen",
    "finetuning_type": "lora",
    "lora_rank": 16,
    "learning_rate": 1.0e-4,
    "max_steps": 100,
}


def _create(client: TestClient, account: Account, name: str = "base", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "spec": SPEC, **fields}
    response = client.post("/api/templates", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    template: dict[str, Any] = response.json()
    return template


def test_create_list_update_delete_with_audit(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    created = _create(client, alice, description="LoRA r16")
    assert created["spec"] == SPEC and created["shared"] is False and created["editable"] is True
    assert created["owner_id"] == alice.id

    listed = client.get("/api/templates", headers=alice.headers).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == created["id"]

    assert_error(
        client.post("/api/templates", json={"name": "base", "spec": SPEC}, headers=alice.headers),
        409, "template_name_taken",
    )  # fmt: skip
    patched = client.patch(
        f"/api/templates/{created['id']}",
        json={"name": "renamed", "shared": True, "spec": {**SPEC, "lora_rank": 32}},
        headers=alice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed" and patched.json()["shared"] is True
    assert patched.json()["spec"]["lora_rank"] == 32
    other = _create(client, alice, name="other")
    assert_error(
        client.patch(f"/api/templates/{other['id']}", json={"name": "renamed"}, headers=alice.headers),
        409, "template_name_taken",
    )  # fmt: skip
    assert_error(
        client.patch(f"/api/templates/{other['id']}", json={"name": None}, headers=alice.headers),
        422,
        field="body.name",
    )
    assert client.delete(f"/api/templates/{created['id']}", headers=alice.headers).status_code == 204
    assert_error(
        client.get(f"/api/templates/{created['id']}", headers=alice.headers), 404, "template_not_found"
    )

    actions = [e["action"] for e in api.audit(api.admin(), action="template.")]
    assert actions.count("template.created") == 2
    assert "template.updated" in actions and "template.deleted" in actions


def test_spec_is_validated_like_a_job_spec(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    bob = api.account("bob")

    def post(spec: dict[str, Any], who: Account = alice) -> Any:
        return client.post("/api/templates", json={"name": "t", "spec": spec}, headers=who.headers)

    error = assert_error(
        post({**SPEC, "learning_rat": 0.1}), 422, "invalid_spec", field="body.spec.learning_rat"
    )
    assert "did you mean 'learning_rate'" in error["details"][0]["message"]
    assert_error(post({**SPEC, "lora_rank": 0}), 422, "invalid_spec", field="body.spec.lora_rank")
    assert_error(post({**SPEC, "dataset_dir": "/etc"}), 422, "invalid_spec", field="body.spec.dataset_dir")
    assert_error(
        post({**SPEC, "model_name_or_path": "/srv/models/x"}),
        422,
        "invalid_spec",
        field="body.spec.model_name_or_path",
    )
    assert_error(post({**SPEC, "trust_remote_code": True}), 422, field="body.spec.trust_remote_code")
    # the dataset is optional; when given it must be one the author may use
    bobs = sample_dataset(client, bob)
    assert_error(post({**SPEC, "dataset": bobs["id"]}), 422, "invalid_spec", field="body.spec.dataset")
    mine = post({**SPEC, "dataset": bobs["id"]}, who=bob)
    assert mine.status_code == 201 and mine.json()["spec"]["dataset"] == bobs["id"]
    # keys the server derives are not kept
    derived = client.post(
        "/api/templates", json={"name": "d", "spec": {**SPEC, "output_dir": "x"}}, headers=alice.headers
    )
    assert derived.status_code == 201 and "output_dir" not in derived.json()["spec"]
    assert_error(client.post("/api/templates", json={"name": "", "spec": SPEC}, headers=alice.headers), 422)


def test_sharing_and_access(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    private = _create(client, alice, name="private")
    shared = _create(client, alice, name="shared", shared=True)

    bob_list = client.get("/api/templates", headers=bob.headers).json()
    assert [t["id"] for t in bob_list["items"]] == [shared["id"]]
    assert bob_list["items"][0]["editable"] is False
    assert client.get("/api/templates?scope=mine", headers=bob.headers).json()["total"] == 0
    assert client.get(f"/api/templates/{shared['id']}", headers=bob.headers).status_code == 200
    assert_error(client.get(f"/api/templates/{private['id']}", headers=bob.headers), 404)
    assert_error(client.get(f"/api/templates/{private['id']}/export", headers=bob.headers), 404)
    # visible but not his: 403 for changes; invisible: 404
    assert_error(
        client.patch(f"/api/templates/{shared['id']}", json={"name": "x"}, headers=bob.headers),
        403,
        "not_owner",
    )
    assert_error(client.delete(f"/api/templates/{shared['id']}", headers=bob.headers), 403, "not_owner")
    assert_error(client.delete(f"/api/templates/{private['id']}", headers=bob.headers), 404)
    # staff read every template (and may list one user's), but only the owner changes it
    assert client.get(f"/api/templates/{private['id']}", headers=operator.headers).status_code == 200
    by_owner = client.get(f"/api/templates?owner_id={alice.id}", headers=operator.headers).json()
    assert {t["id"] for t in by_owner["items"]} == {private["id"], shared["id"]}
    assert_error(client.delete(f"/api/templates/{private['id']}", headers=operator.headers), 403, "not_owner")
    # a researcher's owner_id filter is ignored: still only own + shared
    assert client.get(f"/api/templates?owner_id={alice.id}", headers=bob.headers).json()["total"] == 1
    assert_error(client.get("/api/templates"), 401)


def test_export_import_round_trip(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    template = _create(client, alice, name="export me")
    exported = client.get(f"/api/templates/{template['id']}/export", headers=alice.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    assert exported.headers["content-disposition"] == f'attachment; filename="template-{template["id"]}.yaml"'
    assert yaml.safe_load(exported.text) == SPEC
    assert list(yaml.safe_load(exported.text)) == list(SPEC)  # the user's key order

    # JSON body
    imported = client.post(
        "/api/templates/import", json={"yaml": exported.text, "name": "imported"}, headers=alice.headers
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["template"]["spec"] == SPEC and imported.json()["notes"] == []
    # raw YAML body, name from the query
    raw = client.post(
        "/api/templates/import?name=raw&shared=true",
        content=exported.text.encode(),
        headers={**alice.headers, "Content-Type": "application/yaml"},
    )
    assert raw.status_code == 201, raw.text
    assert raw.json()["template"]["name"] == "raw" and raw.json()["template"]["shared"] is True
    # parse only: nothing saved
    before = client.get("/api/templates", headers=alice.headers).json()["total"]
    parsed = client.post("/api/templates/parse", json={"yaml": exported.text}, headers=alice.headers)
    assert parsed.status_code == 200 and parsed.json()["spec"] == SPEC
    assert client.get("/api/templates", headers=alice.headers).json()["total"] == before


def test_import_errors_name_the_line_and_the_keys(api: Api, client: TestClient) -> None:
    alice = api.account("alice")

    def imp(text: str) -> Any:
        return client.post("/api/templates/import", json={"yaml": text, "name": "x"}, headers=alice.headers)

    error = assert_error(
        imp("model_name_or_path: a/b\nstage: [sft\n"), 422, "invalid_yaml", field="body.yaml"
    )
    assert "line 3" in error["details"][0]["message"] and "column" in error["details"][0]["message"]
    error = assert_error(
        imp("model_name_or_path: a/b\nlerning_rate: 0.1\nloar_rank: 8\n"), 422, "invalid_spec",
        field="body.spec.lerning_rate",
    )  # fmt: skip
    messages = {d["field"]: d["message"] for d in error["details"]}
    assert "did you mean 'learning_rate'" in messages["body.spec.lerning_rate"]
    assert "did you mean 'lora_rank'" in messages["body.spec.loar_rank"]
    assert_error(imp("- just\n- a list\n"), 422, "invalid_yaml", field="body.yaml")
    assert_error(imp("a: &x [1, 2]\nb: *x\n"), 422, "invalid_yaml", field="body.yaml")  # no alias expansion
    assert_error(imp("# only a comment\n"), 422, "invalid_yaml")
    assert_error(
        client.post("/api/templates/import", json={"name": "x"}, headers=alice.headers),
        422,
        field="body.yaml",
    )
    bad_utf8 = client.post(
        "/api/templates/import",
        content=b"\xff\xfe",
        headers={**alice.headers, "Content-Type": "application/yaml"},
    )
    assert_error(bad_utf8, 422, field="body.yaml")


def test_import_a_llamafactory_yaml_drops_machine_specific_keys(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    lf_yaml = """
### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
trust_remote_code: true
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
### dataset
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
### output
output_dir: saves/llama3-8b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
"""
    response = client.post(
        "/api/templates/import", json={"yaml": lf_yaml, "name": "lf"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    spec = body["template"]["spec"]
    assert "output_dir" not in spec and "dataset" not in spec and "trust_remote_code" not in spec
    assert spec["lora_target"] == "all" and spec["template"] == "llama3"
    assert {n.split(":")[0] for n in body["notes"]} == {"output_dir", "dataset", "trust_remote_code"}


def test_jobs_from_templates_and_job_spec_yaml(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    alices = sample_dataset(client, alice)
    bobs = sample_dataset(client, bob)
    spec = tiny_spec(alices["id"])
    template = client.post(
        "/api/templates", json={"name": "tiny", "spec": spec, "shared": True}, headers=alice.headers
    ).json()
    assert template["spec"]["dataset"] == alices["id"]

    # the template's own dataset
    job = client.post(f"/api/templates/{template['id']}/jobs", json={"name": "from t"}, headers=alice.headers)
    assert job.status_code == 201, job.text
    assert job.json()["status"] == "draft" and job.json()["dataset_id"] == alices["id"]
    assert job.json()["spec"]["max_steps"] == 4
    # bob uses alice's shared template on his own dataset, with a patch
    bobs_job = client.post(
        f"/api/templates/{template['id']}/jobs",
        json={"name": "bob's", "dataset": bobs["id"], "spec_patch": {"max_steps": 2}},
        headers=bob.headers,
    )
    assert bobs_job.status_code == 201, bobs_job.text
    assert bobs_job.json()["owner_id"] == bob.id and bobs_job.json()["spec"]["max_steps"] == 2
    # ... but not on alice's dataset
    assert_error(
        client.post(f"/api/templates/{template['id']}/jobs", json={"name": "x"}, headers=bob.headers),
        422, "invalid_spec", field="body.spec.dataset",
    )  # fmt: skip

    # a job's spec as YAML: owner yes, stranger 404
    created = create_job(client, alice, spec)
    exported = client.get(f"/api/jobs/{created['id']}/spec.yaml", headers=alice.headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/yaml")
    assert f'filename="job-{created["id"]}-spec.yaml"' in exported.headers["content-disposition"]
    loaded = yaml.safe_load(exported.text)
    assert loaded["dataset"] == alices["id"] and loaded["dataset_version"] == created["dataset_version_id"]
    assert_error(client.get(f"/api/jobs/{created['id']}/spec.yaml", headers=bob.headers), 404)
    assert_error(client.get("/api/jobs/99999/spec.yaml", headers=alice.headers), 404)
