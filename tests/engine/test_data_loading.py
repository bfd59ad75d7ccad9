"""Loading the LLaMA-Factory sample files, formats, column mapping, max_samples, splits, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loraforge.engine.data import DataError, NoValidRowsError, prepare_data
from loraforge.engine.spec_loading import load_spec


def _spec(data_dir: Path, **kw: Any) -> Any:
    return load_spec({"model_name_or_path": "m", "dataset_dir": str(data_dir), "template": "default", **kw})


@pytest.mark.parametrize(
    ("name", "stage", "kind", "rows"),
    [
        ("identity", "sft", "alpaca", 91),
        ("alpaca_en_demo", "sft", "alpaca", 999),
        ("alpaca_zh_demo", "sft", "alpaca", 1000),
        ("dpo_en_demo", "dpo", "preference", 300),
        ("dpo_zh_demo", "dpo", "preference", 300),
        ("kto_en_demo", "sft", "kto", 300),
        ("glaive_toolcall_en_demo", "sft", "sharegpt", 300),
        ("c4_demo", "pt", "text", 300),
        ("wiki_demo", "pt", "text", 30),
    ],
)
def test_sample_files_load(
    lf_data_dir: Path, tiny_llama_tokenizer: Any, name: str, stage: str, kind: str, rows: int
) -> None:
    data = prepare_data(_spec(lf_data_dir, dataset=name, stage=stage, cutoff_len=256), tiny_llama_tokenizer)
    (ds,) = data.stats.datasets
    assert (ds.format, ds.rows_read, ds.rows_kept, ds.rows_skipped) == (kind, rows, rows, 0)
    assert len(data.train_dataset) > 0
    if stage == "dpo":
        row = data.train_dataset[0]
        assert row["prompt"].startswith("Human: ") and row["prompt"].endswith("\nAssistant:")
        assert row["chosen"].endswith("</s>") and row["rejected"].endswith("</s>")
    elif stage == "pt":
        assert all(len(data.train_dataset[i]["input_ids"]) == 256 for i in range(len(data.train_dataset)))
    else:
        item = data.train_dataset[0]
        assert any(label != -100 for label in item["labels"])


def test_alpaca_row_becomes_lf_prompt(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    tok = tiny_llama_tokenizer
    data = prepare_data(_spec(lf_data_dir, dataset="alpaca_en_demo", max_samples=20), tok)
    rows = json.loads((lf_data_dir / "alpaca_en_demo.json").read_text())
    with_input = next(i for i, r in enumerate(rows[:20]) if r["input"])
    text = tok.decode(data.train_dataset[with_input]["input_ids"])
    r = rows[with_input]
    assert text.startswith(f"Human: {r['instruction']}\n{r['input']}</s>\nAssistant:")


def test_file_path_formats_and_column_mapping(tmp_path: Path, tiny_qwen_tokenizer: Any) -> None:
    tok = tiny_qwen_tokenizer
    (tmp_path / "msgs.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "S"},
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": f"a{i}"},
                    ]
                }
            )
            for i in range(5)
        )
    )
    (tmp_path / "qa.csv").write_text("question,answer\nwhat,that\nwho,them\n")
    (tmp_path / "qa.tsv").write_text("instruction\toutput\nhi\thello\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"instruction": ["x", "y"], "output": ["1", "2"]}), tmp_path / "d.parquet")
    base = {"model_name_or_path": "m", "template": "chatml", "dataset_dir": str(tmp_path)}
    msgs = prepare_data(load_spec({**base, "dataset": "msgs.jsonl"}), tok)
    assert msgs.stats.datasets[0].format == "openai" and msgs.stats.rows_kept == 5
    assert tok.decode(msgs.train_dataset[0]["input_ids"]).startswith("<|im_start|>system\nS<|im_end|>")
    csv = prepare_data(
        load_spec(
            {
                **base,
                "dataset": "qa.csv",
                "formatting": "alpaca",
                "columns": {"prompt": "question", "response": "answer"},
            }
        ),
        tok,
    )
    assert csv.stats.rows_kept == 2
    assert "what" in tok.decode(csv.train_dataset[0]["input_ids"])
    assert prepare_data(load_spec({**base, "dataset": "qa.tsv"}), tok).stats.rows_kept == 1
    assert prepare_data(load_spec({**base, "dataset": str(tmp_path / "d.parquet")}), tok).stats.rows_kept == 2


def test_sharegpt_tags_from_spec(tmp_path: Path, tiny_qwen_tokenizer: Any) -> None:
    rows = [{"dialog": [{"speaker": "me", "text": "hi"}, {"speaker": "bot", "text": "yo"}]}]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    spec = load_spec(
        {
            "model_name_or_path": "m",
            "template": "chatml",
            "dataset": str(tmp_path / "d.json"),
            "formatting": "sharegpt",
            "columns": {"messages": "dialog"},
            "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"},
        }
    )
    data = prepare_data(spec, tiny_qwen_tokenizer)
    assert data.stats.rows_kept == 1


def test_max_samples_is_per_dataset(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    data = prepare_data(
        _spec(lf_data_dir, dataset="identity,alpaca_en_demo", max_samples=50), tiny_llama_tokenizer
    )
    assert [d.rows_read for d in data.stats.datasets] == [50, 50]
    assert len(data.train_dataset) == 100


def test_val_size_split_is_deterministic(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    def split(seed: int) -> tuple[list[list[int]], list[list[int]]]:
        d = prepare_data(
            _spec(lf_data_dir, dataset="identity", val_size=0.2, seed=seed), tiny_llama_tokenizer
        )
        ev = d.eval_dataset
        return [d.train_dataset[i]["input_ids"] for i in range(len(d.train_dataset))], [
            ev[i]["input_ids"] for i in range(len(ev))
        ]

    a, b, c = split(1), split(1), split(2)
    assert a == b
    assert len(a[1]) == 19 and len(a[0]) == 72  # ceil(0.2 × 91)
    assert a[1] != c[1]


def test_cutoff_truncation(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    spec = _spec(lf_data_dir, dataset="alpaca_en_demo", cutoff_len=64, max_samples=100)
    data = prepare_data(spec, tiny_llama_tokenizer)
    assert max(data.train_dataset.lengths) <= 64
    assert data.stats.truncated_examples > 0
    dropped = prepare_data(
        _spec(lf_data_dir, dataset="alpaca_en_demo", cutoff_len=64, max_samples=100, truncation="drop"),
        tiny_llama_tokenizer,
    )
    assert len(dropped.train_dataset) == 100 - dropped.stats.dropped_examples < 100


def test_no_valid_rows_names_rows(tmp_path: Path, tiny_llama_tokenizer: Any) -> None:
    rows = [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "x"}]},
        {"conversations": [{"from": "human", "value": "hi"}]},
        {"conversations": "nope"},
    ]
    (tmp_path / "bad.json").write_text(json.dumps(rows))
    spec = load_spec(
        {
            "model_name_or_path": "m",
            "template": "default",
            "dataset": str(tmp_path / "bad.json"),
            "formatting": "sharegpt",
        }
    )
    with pytest.raises(NoValidRowsError) as info:
        prepare_data(spec, tiny_llama_tokenizer)
    msg = str(info.value)
    assert "3 read, 0 kept, 3 skipped" in msg
    assert "row 0: conversations[1].from: expected a assistant turn" in msg
    assert "row 1: conversations" in msg and "row 2: conversations" in msg


def test_sft_on_text_data_explains(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    with pytest.raises(NoValidRowsError, match="response: missing"):
        prepare_data(_spec(lf_data_dir, dataset="wiki_demo"), tiny_llama_tokenizer)
    with pytest.raises(DataError, match="needs preference data"):
        prepare_data(_spec(lf_data_dir, dataset="identity", stage="dpo"), tiny_llama_tokenizer)


def test_tokenised_data_is_cached(tmp_path: Path, lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    spec = _spec(lf_data_dir, dataset="identity", packing=True, cutoff_len=128)
    first = prepare_data(spec, tiny_llama_tokenizer, cache_dir=tmp_path)
    second = prepare_data(spec, tiny_llama_tokenizer, cache_dir=tmp_path)
    assert not first.stats.cache_hit and second.stats.cache_hit
    assert [second.train_dataset[i] for i in range(len(second.train_dataset))] == [
        first.train_dataset[i] for i in range(len(first.train_dataset))
    ]
    assert second.stats.rows_kept == 91
