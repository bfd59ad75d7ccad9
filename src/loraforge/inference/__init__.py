"""Inference: the builtin OpenAI-compatible worker, its manager (deployments), vLLM, and the gateway.

The server side (`manager`, `gateway`, `providers`, `types`) never imports torch; only
`worker` (a separate process: `python -m loraforge.inference.worker`) does.
"""
