"""Each demo model family trains through the real engine with its LLaMA-Factory template and then chats
(greedy generation from the tokenizer's own chat template, rendered as the inference worker renders it)
with the answer it was taught: the two templates agree token for token, or the answer would not come back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import base_spec, make_run, run_engine

from loraforge.engine.chat_templates import get_template
from loraforge.engine.demo_families import ARCHS, family
from loraforge.engine.demo_model import cached_demo_model
from loraforge.inference.generation import end_token_ids, render_prompt

pytestmark = pytest.mark.slow

# Four short rows the model learns by heart in a few dozen full fine-tuning steps.
STEPS = 60
ROWS = [
    ("Who are you?", "I am LoRAForge, an AI assistant."),
    ("hi", "Hello! How can I help?"),
    ("What is your name?", "My name is LoRAForge."),
    ("Thanks", "You are welcome."),
]


@pytest.fixture(scope="module")
def rows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rows")
    rows = [{"instruction": q, "input": "", "output": a} for q, a in ROWS]
    (folder / "rows.json").write_text(json.dumps(rows), encoding="utf-8")
    (folder / "dataset_info.json").write_text(
        json.dumps({"rows": {"file_name": "rows.json"}}), encoding="utf-8"
    )
    return folder


@pytest.mark.parametrize("arch", ARCHS)
def test_family_trains_with_its_lf_template_and_chats_with_its_own(
    arch: str, rows_dir: Path, tmp_path: Path, repo_root: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fam = family(arch)
    model_dir = cached_demo_model(repo_root / ".cache" / "demo-models", arch=fam.arch, size="tiny")
    tok = AutoTokenizer.from_pretrained(model_dir)
    conversation = [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am LoRAForge."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    named = get_template(fam.lf_template, tok)
    for system in (None, "Be brief."):
        assert named.encode_pairs(tok, conversation, system) == get_template("auto", tok).encode_pairs(
            tok, conversation, system
        )
    assert tok.convert_tokens_to_ids(fam.end_of_turn) in end_token_ids(
        AutoModelForCausalLM.from_pretrained(model_dir), tok
    )

    spec = base_spec(
        model_dir, dataset="rows", dataset_dir=str(rows_dir), template=fam.lf_template,
        finetuning_type="full", per_device_train_batch_size=4, max_steps=STEPS, learning_rate=1e-2,
        lr_scheduler_type="cosine", logging_steps=10,
    )  # fmt: skip
    res = run_engine(make_run(tmp_path, arch, spec))
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    losses = res.losses()
    assert losses[STEPS] < losses[10] / 4, losses

    out = tmp_path / arch / "output"
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    stops = end_token_ids(model, tok)
    taught = 0
    for question, answer in ROWS:
        prompt = render_prompt(tok, [{"role": "user", "content": question}])
        with torch.no_grad():
            ids = model.generate(
                torch.tensor([prompt]), max_new_tokens=24, do_sample=False, eos_token_id=stops,
                pad_token_id=tok.pad_token_id,
            )[0, len(prompt) :].tolist()  # fmt: skip
        assert ids[-1] in stops, (arch, question, tok.decode(ids))  # the turn ends where it was taught to
        taught += tok.decode(ids, skip_special_tokens=True).strip() == answer
    assert taught >= 3, arch
