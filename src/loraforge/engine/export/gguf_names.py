"""What a Hugging Face config and tensor name become in GGUF: architecture, hyper-parameters,
tensor names (through gguf-py's `TensorNameMap`, the table llama.cpp's converters use) and
llama.cpp's q/k row permutation for the Llama family.

Mistral checkpoints are written as the `llama` architecture, as llama.cpp's converter does: without
a sliding window a Mistral decoder is a Llama decoder. Qwen2 keeps Hugging Face's rotary layout
(llama.cpp runs it in NEOX mode), so its q/k are not permuted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loraforge.engine.export.errors import UnsupportedArchitectureError

# Hugging Face `architectures[0]` -> (GGUF architecture name, permute q/k rows)
_ARCHS: dict[str, tuple[str, bool]] = {
    "Qwen2ForCausalLM": ("qwen2", False),
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
}
SUPPORTED_ARCHITECTURES = tuple(sorted(_ARCHS))


@dataclass(frozen=True)
class ModelInfo:
    """The source model's config as far as the converter needs it."""

    hf_arch: str
    arch: str  # GGUF architecture name
    permute_qk: bool
    config: dict[str, Any]

    @property
    def n_head(self) -> int:
        return int(self.config["num_attention_heads"])

    @property
    def n_head_kv(self) -> int:
        return int(self.config.get("num_key_value_heads") or self.n_head)

    @property
    def n_layer(self) -> int:
        return int(self.config["num_hidden_layers"])

    @property
    def head_dim(self) -> int:
        return int(self.config.get("head_dim") or self.config["hidden_size"] // self.n_head)

    @property
    def tied_embeddings(self) -> bool:
        return bool(self.config.get("tie_word_embeddings", False))

    @property
    def rope_theta(self) -> float:
        params = self.config.get("rope_parameters") or {}
        return float(params.get("rope_theta") or self.config.get("rope_theta") or 10000.0)


def read_model_info(model_dir: Path) -> ModelInfo:
    """The model folder's config.json, checked for an architecture we convert."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    hf_arch = str(archs[0]) if archs else ""
    if hf_arch not in _ARCHS:
        raise UnsupportedArchitectureError(
            f"cannot export {hf_arch or config.get('model_type')!r} to GGUF; supported: "
            + ", ".join(SUPPORTED_ARCHITECTURES),
            suggestion="Export it as merged safetensors (format `merged`) instead.",
        )
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = params.get("rope_type") or params.get("type") or "default"
    if rope_type != "default":
        # llama3/yarn/linear scaling need extra GGUF keys (and a rope_freqs tensor): not written yet.
        raise UnsupportedArchitectureError(f"rope scaling {rope_type!r} is not supported by the GGUF export")
    arch, permute = _ARCHS[hf_arch]
    return ModelInfo(hf_arch=hf_arch, arch=arch, permute_qk=permute, config=config)


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k permutation: Hugging Face stores each head's rotary halves as two blocks
    (`rotate_half`); GGML's rope wants the pairs interleaved. Rows only, so it applies to a LoRA B."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def unpermute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of `permute_rows` (what a GGUF reader does to get Hugging Face's layout back)."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def qk_heads(info: ModelInfo, hf_name: str) -> int | None:
    """How many heads to permute `hf_name` over, or None when it is not permuted."""
    if not info.permute_qk:
        return None
    if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        return info.n_head
    if hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        return info.n_head_kv
    return None


class NameMapper:
    """Hugging Face tensor name -> GGUF tensor name, via gguf-py's table for the architecture."""

    def __init__(self, info: ModelInfo) -> None:
        import gguf

        arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == info.arch)
        self._map = gguf.get_tensor_name_map(arch, info.n_layer)
        self._info = info

    def skip(self, hf_name: str) -> bool:
        """Tensors llama.cpp does not want: rotary caches, and a tied LM head (it reuses token_embd)."""
        if hf_name.endswith(".rotary_emb.inv_freq"):
            return True
        return hf_name == "lm_head.weight" and self._info.tied_embeddings

    def gguf_name(self, hf_name: str) -> str:
        name = self._map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UnsupportedArchitectureError(f"no GGUF name for tensor {hf_name!r} ({self._info.hf_arch})")
        return name


def write_hparams(writer: Any, info: ModelInfo, name: str, vocab_size: int) -> None:
    """The `<arch>.*` keys llama.cpp (and transformers' GGUF reader) build the model from."""
    c = info.config
    writer.add_name(name)
    writer.add_context_length(int(c.get("max_position_embeddings") or 2048))
    writer.add_embedding_length(int(c["hidden_size"]))
    writer.add_block_count(info.n_layer)
    writer.add_feed_forward_length(int(c["intermediate_size"]))
    writer.add_head_count(info.n_head)
    writer.add_head_count_kv(info.n_head_kv)
    writer.add_rope_freq_base(info.rope_theta)
    writer.add_layer_norm_rms_eps(float(c.get("rms_norm_eps") or 1e-6))
    writer.add_vocab_size(vocab_size)
    if info.arch == "llama":
        writer.add_rope_dimension_count(info.head_dim)
    if info.head_dim != int(c["hidden_size"]) // info.n_head:
        writer.add_key_length(info.head_dim)
        writer.add_value_length(info.head_dim)
