"""Inference: the builtin OpenAI-compatible worker, vLLM launch, upstream HTTP and shared shapes.

The server side (`vllm`, `upstream`, `think`, `types`; the manager and gateway are in
`loraforge.services.serving`) never imports torch. Only the builtin worker does, in a separate
process (`python -m loraforge.inference.worker`): `worker` (its command line), `worker_app` (routes),
`in_flight` (slots and what a request holds), `generation` and `model_cache`.
"""
