"""Shipped presets (each validated by the engine), the spec schema for the form, the memory estimate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import sample_dataset

from loraforge.engine.chat_templates import TEMPLATE_NAMES
from loraforge.engine.spec_loading import load_spec
from loraforge.services.jobs import memory_estimate as me
from loraforge.services.jobs.presets import list_presets
from loraforge.settings import Settings

PRESETS = list_presets()
# family label -> (text the hub id contains, chat template)
FAMILIES = {
    "Qwen2.5": ("Qwen/Qwen2.5-", "qwen"),
    "DeepSeek-R1-Distill-Qwen": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-", "deepseek3"),
    "Llama 3.2": ("meta-llama/Llama-3.2-", "llama3"),
    "Llama 3.1": ("meta-llama/Llama-3.1-", "llama3"),
    "Demo": ("demo-tiny", "auto"),  # the built-in demo model, with its tokenizer's own template
}


def test_presets_cover_the_families_and_methods() -> None:
    shipped = {(p.family, p.size, p.method) for p in PRESETS}
    for family, size in [
        ("Qwen2.5", "0.5B"), ("Qwen2.5", "1.5B"), ("Qwen2.5", "3B"), ("Qwen2.5", "7B"),
        ("DeepSeek-R1-Distill-Qwen", "1.5B"), ("DeepSeek-R1-Distill-Qwen", "7B"),
        ("Llama 3.2", "1B"), ("Llama 3.2", "3B"), ("Llama 3.1", "8B"),
    ]:  # fmt: skip
        assert (family, size, "lora") in shipped
    assert {p.method for p in PRESETS} == {"lora", "qlora", "full"}
    assert len({p.id for p in PRESETS}) == len(PRESETS)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.id for p in PRESETS])
def test_every_preset_loads_with_the_engine_and_matches_its_labels(preset: Any) -> None:
    spec = load_spec({**preset.spec, "dataset": ["/data/train.jsonl"]})
    assert "dataset" not in preset.spec  # chosen in the form
    hub_prefix, template = FAMILIES[preset.family]
    assert spec.model_name_or_path.startswith(hub_prefix), spec.model_name_or_path
    assert f"-{preset.size}-".lower() in spec.model_name_or_path.lower() + "-"
    assert spec.template == template and template in TEMPLATE_NAMES
    if preset.method == "lora":
        assert spec.finetuning_type == "lora" and spec.quantization_bit is None
    elif preset.method == "qlora":
        assert spec.finetuning_type == "lora" and spec.quantization_bit == 4
    else:
        assert spec.finetuning_type == "full" and spec.quantization_bit is None
    assert not spec.trust_remote_code  # researchers may use every preset
    if preset.hardware.device == "cpu":
        assert spec.devices == "cpu" and spec.precision == "fp32"
        assert preset.hardware.min_gpu_memory_gb is None
    else:
        assert preset.hardware.min_gpu_memory_gb is not None and spec.precision == "bf16"


def test_presets_endpoint_lists_them_with_estimates(api: Api, client: TestClient) -> None:
    assert_error(client.get("/api/templates/presets"), 401)
    alice = api.account("alice")
    response = client.get("/api/templates/presets", headers=alice.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [p.id for p in PRESETS]
    by_id = {i["id"]: i for i in items}
    lora7 = by_id["qwen2.5-7b-instruct-lora"]
    assert (
        lora7["family"] == "Qwen2.5"
        and lora7["method"] == "lora"
        and lora7["model"] == "Qwen/Qwen2.5-7B-Instruct"
    )
    assert lora7["estimate"]["params_b"] == pytest.approx(7.6156, abs=1e-3)
    assert lora7["estimate"]["device"] == "gpu"
    qlora7 = by_id["qwen2.5-7b-instruct-qlora"]["estimate"]["estimate_gb"]
    assert qlora7["weights"] < lora7["estimate"]["estimate_gb"]["weights"] / 2  # 4-bit base
    full3 = by_id["qwen2.5-3b-instruct-full"]["estimate"]["estimate_gb"]
    assert full3["optimizer"] == pytest.approx(3.085938688 * 12, rel=1e-3)
    one = client.get("/api/templates/presets/llama-3.2-1b-instruct-full", headers=alice.headers)
    assert one.status_code == 200 and one.json()["spec"]["finetuning_type"] == "full"
    assert_error(client.get("/api/templates/presets/nope", headers=alice.headers), 404, "preset_not_found")


def test_every_preset_creates_a_draft_job_through_the_api(api: Api, client: TestClient) -> None:
    """The server's own spec check (model rule, engine schema) accepts each preset for a researcher."""
    alice = api.account("alice")
    dataset = sample_dataset(client, alice)
    for preset in PRESETS:
        response = client.post(
            "/api/jobs",
            json={"name": preset.id, "spec": {**preset.spec, "dataset": dataset["id"]}},
            headers=alice.headers,
        )
        assert response.status_code == 201, (preset.id, response.text)
        assert response.json()["status"] == "draft"


# ---- spec schema ---------------------------------------------------------------------------------------


def test_spec_schema_route_is_not_captured_by_the_job_route(api: Api, client: TestClient) -> None:
    assert_error(client.get("/api/jobs/spec-schema"), 401)
    alice = api.account("alice")
    response = client.get("/api/jobs/spec-schema", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    props = body["schema"]["properties"]
    groups = body["groups"]
    assert groups["common"][:3] == ["model_name_or_path", "template", "dataset"]
    assert "learning_rate" in groups["common"] and "lora_dropout" in groups["advanced"]
    assert "output_dir" in groups["hidden"] and "dataset_dir" in groups["hidden"]
    grouped = groups["common"] + groups["advanced"] + groups["hidden"]
    assert len(grouped) == len(set(grouped)) and set(grouped) == set(props)
    for key in groups["common"] + groups["advanced"]:
        assert props[key].get("description"), key  # every form field has a tooltip
    assert props["dataset"]["type"] == "integer"
    # the job route still answers for real ids and non-ids
    assert_error(client.get("/api/jobs/999", headers=alice.headers), 404)
    assert_error(client.get("/api/jobs/not-a-number", headers=alice.headers), 422)


# ---- memory estimate: numbers checked by hand ------------------------------------------------------------

TINY = me.ModelShape(vocab=1000, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=4, tied=True)


def test_parameter_counts_by_hand() -> None:
    # per layer: attention 4 × 64² = 16384, MLP 3 × 64 × 128 = 24576, two norms 128 → 41088
    assert TINY.layer_params() == 41088
    # 2 layers + tied embedding 1000 × 64 + final norm 64
    assert TINY.params() == 2 * 41088 + 64000 + 64 == 146240
    # LoRA r=8 on all 7 linears: q,k,v,o 8 × (64 + 64) each; gate, up, down 8 × (64 + 128) each
    assert TINY.lora_params(8, list(me.LINEAR_MODULES)) == 2 * (4 * 1024 + 3 * 1536) == 17408
    assert TINY.lora_params(8, ["q_proj", "v_proj"]) == 2 * 2 * 1024
    # published sizes of real models (from their config.json shapes)
    assert me.known_shape("Qwen/Qwen2.5-0.5B-Instruct").params() == 494_032_768  # type: ignore[union-attr]
    assert me.known_shape("meta-llama/Llama-3.1-8B-Instruct").params() == 8_030_261_248  # type: ignore[union-attr]


def test_lora_estimate_by_hand() -> None:
    spec = {"finetuning_type": "lora", "lora_rank": 8, "per_device_train_batch_size": 2, "cutoff_len": 128,
            "sparse_lm_head": False}  # fmt: skip
    est = me.estimate(spec, shape=TINY, params_b=TINY.params() / 1e9, device="cpu")  # fp32 on CPU
    gb = 1e9
    assert est.weights * gb == pytest.approx(146240 * 4)
    assert est.adapters * gb == pytest.approx(17408 * 4)
    assert est.optimizer * gb == pytest.approx(17408 * 12)
    # 256 tokens × 64 hidden × 4 bytes × 2 layers × 17, plus fp32 logits 256 × 1000 × 4
    assert est.activations * gb == pytest.approx(256 * 64 * 4 * 2 * 17 + 256 * 1000 * 4)
    assert est.total * gb == pytest.approx(584960 + 69632 + 208896 + 3252224)
    # gradient checkpointing: each layer keeps its input (c bytes) plus one layer's full set
    ckpt = me.estimate({**spec, "gradient_checkpointing": True}, shape=TINY, params_b=TINY.params() / 1e9,
                       device="cpu")  # fmt: skip
    assert ckpt.activations * gb == pytest.approx(256 * 64 * 4 * (2 + 17) + 256 * 1000 * 4)


def test_qlora_and_full_estimates_by_hand() -> None:
    spec = {"quantization_bit": 4, "precision": "bf16"}
    qlora = me.estimate(spec, shape=TINY, params_b=TINY.params() / 1e9, device="gpu")
    linear = 2 * (4 * 64 * 64 + 3 * 64 * 128)  # 81920 decoder linear weights at half a byte
    assert qlora.weights * 1e9 == pytest.approx(linear * 0.5 + (146240 - linear) * 2)
    p7 = me.known_shape("Qwen/Qwen2.5-7B-Instruct").params()  # type: ignore[union-attr]
    full = me.estimate({"finetuning_type": "full"}, shape=me.known_shape("Qwen2.5-7B"), params_b=p7 / 1e9,
                       device="gpu")  # fmt: skip
    assert full.weights == pytest.approx(p7 * 4 / 1e9) and full.optimizer == pytest.approx(p7 * 12 / 1e9)
    assert full.adapters == 0


def test_sizes_from_names() -> None:
    assert me.size_from_name("Qwen/Qwen2.5-7B-Instruct") == 7.0
    assert me.size_from_name("org/Model-0.5b") == 0.5
    assert me.size_from_name("HuggingFaceTB/SmolLM2-135M") == pytest.approx(0.135)
    assert me.size_from_name("org/no-size-here") is None


def _write_config(settings: Settings) -> None:
    folder = settings.models_dir / "demo-tiny"
    folder.mkdir(parents=True)
    config = {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
              "tie_word_embeddings": True}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def test_estimate_endpoint(api: Api, client: TestClient, settings: Settings) -> None:
    assert_error(client.post("/api/jobs/estimate", json={"spec": {}}), 401)
    alice = api.account("alice")
    _write_config(settings)
    spec = {"model_name_or_path": "demo-tiny", "devices": "cpu", "per_device_train_batch_size": 2,
            "cutoff_len": 128, "sparse_lm_head": False}  # fmt: skip
    response = client.post("/api/jobs/estimate", json={"spec": spec}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["params_b"] == pytest.approx(146240 / 1e9, abs=1e-4) and body["device"] == "cpu"
    assert body["source"] == "the model's config.json"
    assert body["estimate_gb"]["total"] == pytest.approx(4115712 / 1e9, abs=1e-4)

    named = client.post(
        "/api/jobs/estimate",
        json={"spec": {"model_name_or_path": "someorg/Thing-13B"}},
        headers=alice.headers,
    ).json()
    assert named["params_b"] == 13.0 and named["source"] == "the size in the model's name"
    assert any("nearest known model" in n for n in named["notes"])

    unknown = client.post(
        "/api/jobs/estimate", json={"spec": {"model_name_or_path": "someorg/mystery"}}, headers=alice.headers
    )
    assert unknown.status_code == 200
    assert unknown.json()["params_b"] is None and unknown.json()["notes"]
    # a researcher's absolute path is never read (no probing of server files)
    probe = client.post(
        "/api/jobs/estimate",
        json={"spec": {"model_name_or_path": str(settings.models_dir / "demo-tiny")}},
        headers=alice.headers,
    ).json()
    assert probe["params_b"] is None
    assert_error(
        client.post("/api/jobs/estimate", json={"spec": "x"}, headers=alice.headers), 422, field="body.spec"
    )
