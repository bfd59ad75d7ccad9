"""Export a model (or a LoRA adapter) to the formats people deploy with: GGUF (llama.cpp, Ollama,
LM Studio), a GGUF LoRA adapter, an Ollama bundle, merged safetensors and (helper module) ONNX.

Entry points: `job.run_export_job` (the `stage: export` engine job) and `cli` (`loraforge export`).
Heavy imports (torch, transformers, gguf) stay inside functions.
"""
