"""llama.cpp's `convert_hf_to_gguf.py`, unchanged but for one override: the BPE pre-tokenizer's name.

Usage: python llamacpp_convert_pre.py LLAMA_CPP_DIR MODEL_DIR [convert_hf_to_gguf.py arguments...]

llama.cpp's converter names a BPE pre-tokenizer by hashing the ids a tokenizer gives for a fixed text
(`TextModel.get_vocab_base_pre`); it only knows published checkpoints and refuses anything else. The
benchmark's model carries LoRAForge's small demo tokenizer (a Qwen2-style byte-level BPE with Qwen2's
split regex), whose hash it does not know. This wrapper makes that one method return "qwen2" (the
name llama.cpp would give a real Qwen2 tokenizer) and runs the converter's own `main()`; every tensor
goes through llama.cpp's code untouched. The benchmark compares tensor data, not tokenizer metadata.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    llama_cpp = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(llama_cpp))
    sys.argv = [str(llama_cpp / "convert_hf_to_gguf.py"), *sys.argv[2:]]

    import convert_hf_to_gguf  # the converter module itself (its `main` and argument parser)
    from conversion.base import TextModel

    def qwen2_pre(self: object, tokenizer: object) -> str:
        return "qwen2"

    TextModel.get_vocab_base_pre = qwen2_pre
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main()
