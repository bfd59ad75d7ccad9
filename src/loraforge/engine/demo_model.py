"""Build small random-init causal LMs with a locally trained tokenizer (no hub, ever).

Tests, benchmarks and the out-of-the-box demo need a real Hugging Face model folder that
`AutoModelForCausalLM` / `AutoTokenizer` load like any other. We make one on the spot:

* a byte-level BPE tokenizer trained with `tokenizers` on the text bundled in `engine/assets/`;
* a `qwen2`, `llama`, `mistral` or `phi3` config of the requested size with seeded random weights;
* a chat template in the family's layout (`engine/demo_families.py`: qwen2 ChatML; llama LLaMA-Factory's
  `default`, the same one the peer benchmark's model uses; mistral `[INST]`; phi3 `<|user|>`).

Everything is deterministic for a seed: the same call writes byte-identical files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from loraforge.engine.demo_families import ARCHS, Arch, Family, family

__all__ = ["ARCHS", "Arch", "Size", "build_demo_model", "cached_demo_model"]

Size = Literal["tiny", "small"]

# Dimensions. "small" matches the peer benchmark's llama-small (hidden 256, 4 layers, FFN 688).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 172},
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 688},
}
# Target BPE vocab per size; the corpus may saturate earlier, then the embedding is padded up to
# this many rows (as real models do) so the LM head costs what a model of this vocab would.
VOCAB: dict[str, int] = {"tiny": 2048, "small": 8192}

# Qwen2's pre-tokenizer split. AutoTokenizer rebuilds any qwen2 folder as `Qwen2Tokenizer` with
# exactly this regex + ByteLevel(use_regex=False) + NFC, ignoring tokenizer.json's pipeline, so we
# must train with the same pipeline or the reloaded tokenizer would split text differently.
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

_ASSET_FILES = ("corpus_en.txt", "corpus_zh.txt", "corpus_qa.txt")
# Bump when the build changes in a way that alters output files (invalidates cached builds).
BUILD_VERSION = "1"


def _corpus_texts() -> list[str]:
    """The bundled corpus as paragraphs (blank-line separated), in a fixed order."""
    root = resources.files("loraforge.engine") / "assets"
    texts: list[str] = []
    for name in _ASSET_FILES:
        raw = (root / name).read_text(encoding="utf-8")
        texts.extend(p.strip() for p in raw.split("\n\n") if p.strip())
    return texts


def _training_iterator(fam: Family) -> Iterator[str]:
    yield from _corpus_texts()
    # The template's fixed words, repeated so that they become whole tokens as in a real vocab.
    fixed = ["Human: ", "\nAssistant:", "System: ", "user\n", "assistant\n", "system\n", *fam.template_words]
    for _ in range(50):
        yield from fixed


def _train_tokenizer(fam: Family, vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    if fam.arch == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(fam.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_iterator(fam), trainer=trainer)
    return tok


def _hf_tokenizer(fam: Family, raw: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token=None,
        additional_special_tokens=list(fam.extra_special),
        **fam.roles,
        model_max_length=2048,
        padding_side="right",
    )
    hf.chat_template = fam.chat_template
    return hf


def _config(fam: Family, size: Size, tokenizer: Any) -> Any:
    vocab = max(VOCAB[size], _round_up(len(tokenizer), 64))
    common: dict[str, Any] = {
        "vocab_size": vocab,
        "max_position_embeddings": 2048,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return fam.config(SIZES[size], common)


def _round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple


def build_demo_model(
    out_dir: str | os.PathLike[str], *, arch: Arch = "qwen2", size: Size = "tiny", seed: int = 0
) -> Path:
    """Write a random-init causal LM + tokenizer + chat template to `out_dir` and return its path.

    The folder loads with `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`;
    the build checks that the reloaded tokenizer encodes and templates text exactly as built.
    """
    fam = family(arch)
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")

    import torch
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _hf_tokenizer(fam, _train_tokenizer(fam, VOCAB[size]))
    config = _config(fam, size, tokenizer)

    # Seed a private generator state so the weights depend on `seed` only, and restore the
    # caller's RNG afterwards (tests may rely on their own seeding).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    end_of_turn = tokenizer.convert_tokens_to_ids(fam.end_of_turn)
    # A turn may end with its own marker (Phi-3's <|end|>) besides the eos: generation stops at either.
    eos = tokenizer.eos_token_id
    model.generation_config.eos_token_id = eos if end_of_turn == eos else [eos, end_of_turn]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "demo_model.json").write_text(
        json.dumps({"arch": arch, "size": size, "seed": seed, "build_version": BUILD_VERSION}, indent=2)
        + "\n"
    )

    _check_round_trip(out, tokenizer)
    return out


def _check_round_trip(out: Path, built: Any) -> None:
    """Fail loudly if AutoTokenizer would see a different tokenizer than the one we trained."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(out)
    sample = "Hello, world!  Numbers 12345 and 中文文本。\n\nHuman: hi</s>\nAssistant:ok <|im_start|>user\n"
    a = built(sample, add_special_tokens=False)["input_ids"]
    b = loaded(sample, add_special_tokens=False)["input_ids"]
    if a != b:
        raise RuntimeError(
            f"AutoTokenizer reloaded {out} as {type(loaded).__name__} and tokenises differently"
        )
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    if loaded.apply_chat_template(msgs, tokenize=False) != built.apply_chat_template(msgs, tokenize=False):
        raise RuntimeError("the reloaded chat template renders differently")
    if loaded.decode(b) != sample:
        raise RuntimeError("the reloaded tokenizer does not decode losslessly")


def _cache_key(arch: str, size: str, seed: int) -> str:
    h = hashlib.sha256(BUILD_VERSION.encode())
    h.update(Path(__file__).read_bytes())
    h.update(Path(__file__).with_name("demo_families.py").read_bytes())  # configs and chat templates
    for text in _corpus_texts():
        h.update(text.encode("utf-8"))
    return f"{arch}-{size}-s{seed}-{h.hexdigest()[:12]}"


def cached_demo_model(
    cache_root: str | os.PathLike[str], *, arch: Arch = "qwen2", size: Size = "tiny", seed: int = 0
) -> Path:
    """Build a demo model once into `cache_root/<key>/` and reuse it afterwards.

    The key covers this module's code and the corpus, so a change rebuilds. A file lock makes
    concurrent test sessions (several engineers, xdist workers) build each variant only once;
    the folder is written to a temp dir and renamed, so readers never see a half-built model.
    """
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / _cache_key(arch, size, seed)
    if (target / "config.json").exists():
        return target
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (target / "config.json").exists():
                return target
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
            try:
                build_demo_model(tmp, arch=arch, size=size, seed=seed)
                tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
