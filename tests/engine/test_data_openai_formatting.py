"""`formatting: openai` named explicitly finds turns under `messages` without a column mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loraforge.engine.data import prepare_data
from loraforge.engine.spec_loading import load_spec


def test_explicit_openai_formatting_reads_messages(tmp_path: Path, tiny_qwen_tokenizer: Any) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(4)
    ]
    (tmp_path / "chat.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    spec = load_spec(
        {
            "model_name_or_path": "m",
            "template": "chatml",
            "dataset": str(tmp_path / "chat.jsonl"),
            "formatting": "openai",
        }
    )
    data = prepare_data(spec, tiny_qwen_tokenizer)
    assert data.stats.rows_kept == 4
    assert data.stats.datasets[0].format == "openai"
