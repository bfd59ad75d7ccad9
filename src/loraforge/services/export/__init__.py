"""Exports: a model version written out in the format a runtime loads (GGUF for llama.cpp, Ollama and
LM Studio; a GGUF LoRA adapter; ONNX; merged safetensors), as a queued job of the `export` stage whose
result is a new version of the same model.

- `formats`: what can be exported here (optional packages decide K-quants and ONNX) and the rules;
- `estimate`: file size and memory to run, from the safetensors headers and config.json;
- `create`: the request (validation, disk precheck, the `exporting` version, the job, audit);
- `launch_spec`: RUN_DIR/spec.json, built when the scheduler launches the job;
- `sync`: the tick hook that turns a finished job into a `ready` (or `failed`) version;
- `files`: a version's own file listing, for single-file downloads with HTTP Range;
- `push`: a version's files uploaded to the Hugging Face Hub or ModelScope with the user's token.

The engine side is `loraforge.engine.export` (`python -m loraforge.engine run RUN_DIR`).
"""
