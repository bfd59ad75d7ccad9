"""Proof that an exported ONNX model runs: ONNX Runtime (onnxruntime-genai: its own tokenizer, its
KV cache) generates greedily from the fixed prompt, and the tokens are compared with transformers'
greedy tokens on the source model, with the same prompt, token count and comparison as the GGUF
verification (`verify.compare`), so the registry shows one kind of result for every format.

Both sides generate exactly NEW_TOKENS with EOS suppressed (`min_new_tokens` / `min_length`): a tiny
random model that would stop at once still yields a comparison. fp32 must be identical (same
arithmetic up to summation order); int4 reports its agreement.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from loraforge.engine.export.verify import NEW_TOKENS, PROMPT, compare, source_tokens


def onnx_tokens(
    onnx_dir: Path, prompt: str = PROMPT, new_tokens: int = NEW_TOKENS
) -> tuple[list[int], list[int]]:
    """(prompt ids, greedy ids) as onnxruntime-genai produces them from ONNX_DIR."""
    import onnxruntime_genai as og

    model = og.Model(str(onnx_dir))
    prompt_ids = [int(t) for t in og.Tokenizer(model).encode(prompt)]
    params = og.GeneratorParams(model)
    total = len(prompt_ids) + new_tokens
    params.set_search_options(do_sample=False, max_length=total, min_length=total, batch_size=1)
    generator = og.Generator(model, params)
    generator.append_tokens([prompt_ids])
    got: list[int] = []
    while not generator.is_done() and len(got) < new_tokens:
        generator.generate_next_token()
        got.append(int(generator.get_next_tokens()[0]))
    return prompt_ids, got


def first_difference(expected: list[int], got: list[int]) -> int | None:
    for i, token in enumerate(expected):
        if i >= len(got) or got[i] != token:
            return i
    return None


def verify_onnx(source: Path, onnx_dir: Path, quantization: str) -> dict[str, Any]:
    """The `verification` block of export.json for an ONNX export of the model folder SOURCE."""
    reader = (
        f"onnxruntime-genai {importlib.metadata.version('onnxruntime-genai')} "
        f"(onnxruntime {importlib.metadata.version('onnxruntime')})"
    )
    expected = source_tokens(source)  # frees the torch model before ONNX Runtime loads its copy
    try:
        got = onnx_tokens(onnx_dir)
    except Exception as exc:  # the runtime refusing the file is the finding, not a crash
        return {
            "ok": False, "reader": reader, "prompt": PROMPT, "tokens_compared": 0, "agreement": 0.0,
            "identical": False, "detail": f"ONNX Runtime could not run the model: {exc}",
        }  # fmt: skip
    result = compare(reader, expected, got, exact=quantization == "fp32")
    diff = first_difference(expected[1], got[1])
    if diff is not None:
        result["detail"] += f"; first difference at new token {diff}"
    # kept for the record (and the tests): what each side generated
    return {**result, "reference_tokens": expected[1], "tokens": got[1]}
