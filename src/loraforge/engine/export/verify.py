"""Prove an exported file loads: read it back with an independent reader and compare a fixed
prompt's greedy tokens with the source model's.

GGUF: transformers' GGUF loader (its own dequantizers and tokenizer builder, not our writer's code);
llama.cpp itself too when `llama_cpp` (llama-cpp-python) is importable. F32/F16/Q8_0 are expected to
give identical tokens; BF16/Q4_0 and K-quants report their agreement. The result is the
`verification` block of export.json.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from loraforge.engine.export.errors import VerificationFailedError

PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"
NEW_TOKENS = 16
EXACT_QUANTS = frozenset({"f32", "f16", "q8_0"})


def greedy_tokens(model: Any, prompt_ids: list[int], new_tokens: int = NEW_TOKENS) -> list[int]:
    """`new_tokens` greedy continuation ids (never stopped early by an eos, so counts always match)."""
    import torch

    ids = torch.tensor([prompt_ids], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=0,
        )
    return [int(t) for t in out[0, len(prompt_ids) :]]


def source_tokens(model_dir: Path, adapter_dir: Path | None = None) -> tuple[list[int], list[int]]:
    """(prompt ids, greedy ids) of the source model in float32 (with its LoRA adapter, unmerged)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A training run saves the tokenizer beside its adapter; a bare adapter uses the base model's.
    has_own = adapter_dir is not None and (adapter_dir / "tokenizer_config.json").is_file()
    tok = AutoTokenizer.from_pretrained(str(adapter_dir if has_own else model_dir))
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    prompt = tok(PROMPT)["input_ids"]
    return prompt, greedy_tokens(model, prompt)


def compare(
    reader: str, expected: tuple[list[int], list[int]], got: tuple[list[int], list[int]], exact: bool
) -> dict[str, Any]:
    """The verification block: agreement = share of positions with the same token."""
    (src_prompt, src_new), (out_prompt, out_new) = expected, got
    same = sum(1 for a, b in zip(src_new, out_new, strict=False) if a == b)
    n = max(len(src_new), 1)
    identical = src_prompt == out_prompt and src_new == out_new
    detail = []
    if src_prompt != out_prompt:
        detail.append(f"prompt tokenized differently ({len(src_prompt)} vs {len(out_prompt)} tokens)")
    detail.append(f"{same}/{len(src_new)} greedy tokens equal")
    if exact and not identical:
        detail.append("expected identical tokens at this precision")
    return {
        "ok": identical if exact else src_prompt == out_prompt,
        "reader": reader,
        "prompt": PROMPT,
        "tokens_compared": len(src_new),
        "agreement": round(same / n, 4),
        "identical": identical,
        "detail": "; ".join(detail),
    }


def transformers_gguf_tokens(gguf_path: Path) -> tuple[list[int], list[int]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # any reader failure means the file is not what we promise
        raise VerificationFailedError(f"transformers could not load {name}: {exc}") from exc
    model.eval()
    prompt = tok(PROMPT)["input_ids"]
    return prompt, greedy_tokens(model, prompt)


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _load_llama(gguf_path: Path) -> Any:
    """llama-cpp-python's `Llama` on GGUF_PATH with llama.cpp's extra CPU buffer types off.

    Why: the extra buffer types (the AMX repacking path on Xeons that have AMX) crash the whole
    process (SIGSEGV, nothing to catch) when they load a quantized GGUF; with them off, F16, Q8_0,
    Q4_0 and the K-quants load and generate (seen with llama-cpp-python 0.3.36). Verification needs
    a load that proves the file, not the fastest kernels. Where `Llama` does not take the option,
    llama.cpp's default model parameters are given it for the duration of this one load."""
    import llama_cpp
    from llama_cpp import Llama

    options: dict[str, Any] = {"n_ctx": 256, "n_threads": 2, "verbose": False, "seed": 0}
    if "use_extra_bufts" in inspect.signature(Llama.__init__).parameters:
        return Llama(model_path=str(gguf_path), use_extra_bufts=False, **options)
    native = llama_cpp.llama_cpp
    original = native.llama_model_default_params

    def defaults() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    native.llama_model_default_params = defaults
    try:
        return Llama(model_path=str(gguf_path), **options)
    finally:
        native.llama_model_default_params = original


def llama_cpp_tokens(gguf_path: Path, new_tokens: int = NEW_TOKENS) -> tuple[list[int], list[int]]:
    """llama.cpp's own load + greedy generation (top-k 1), through llama-cpp-python."""
    llm = _load_llama(gguf_path)
    try:
        prompt = llm.tokenize(PROMPT.encode("utf-8"), add_bos=True)
        out: list[int] = []
        for token in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
            out.append(int(token))
            if len(out) >= new_tokens:
                break
        return [int(t) for t in prompt], out
    finally:
        llm.close()


def verify_gguf(gguf_path: Path, quant: str, expected: tuple[list[int], list[int]]) -> dict[str, Any]:
    """The verification block for a full-model GGUF (transformers; llama.cpp when installed)."""
    exact = quant in EXACT_QUANTS
    result = compare("transformers-gguf", expected, transformers_gguf_tokens(gguf_path), exact)
    if llama_cpp_available():
        try:
            cpp = compare("llama.cpp", expected, llama_cpp_tokens(gguf_path), exact=False)
        except Exception as exc:
            raise VerificationFailedError(f"llama.cpp could not load {gguf_path.name}: {exc}") from exc
        result["llama_cpp"] = cpp
        result["detail"] += f"; llama.cpp: {cpp['detail']}"
    return result
