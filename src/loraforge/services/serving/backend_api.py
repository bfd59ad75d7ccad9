"""Calls to a running backend's admin API: load a model, unload it, read the builtin worker's stats.

The builtin worker loads `(base, adapter)` pairs through `/admin/load` and `/admin/unload`; a vLLM
server serves its base from the start and loads adapters at runtime (`/v1/load_lora_adapter`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from loraforge.errors import Unavailable
from loraforge.inference import vllm
from loraforge.services.serving.backend_processes import BackendProcess


def upstream_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:500]


async def _post_load(
    client: httpx.AsyncClient, backend: BackendProcess, path: str, body: dict[str, Any], failure: str
) -> httpx.Response:
    """POST a load request; Unavailable(`<failure>: <upstream message>`) unless it answers 200."""
    response = await client.post(f"{backend.root_url}{path}", json=body, headers=backend.headers)
    if response.status_code != 200:
        raise Unavailable(f"{failure}: {upstream_message(response)}", code="model_unavailable")
    return response


async def load_model(
    backend: BackendProcess, base: str, adapter: str | None, *, timeout: float
) -> tuple[int | None, str]:
    """Load the model in the backend; (memory bytes if known, upstream model name)."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            if backend.kind == "builtin":
                response = await _post_load(
                    client, backend, "/admin/load", {"base": base, "adapter": adapter},
                    "the model could not be loaded",
                )  # fmt: skip
                return int(response.json().get("bytes") or 0) or None, base
            if adapter is None:
                return None, vllm.served_base_name(base)
            name = vllm.lora_module_name(adapter)
            if name not in backend.adapters:
                await _post_load(
                    client, backend, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": adapter},
                    "vLLM could not load the adapter",
                )  # fmt: skip
                backend.adapters[name] = adapter
            return None, name
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"the inference backend did not answer: {exc}", code="model_unavailable"
            ) from exc


async def unload_model(
    backend: BackendProcess, base: str, adapter: str | None, *, base_still_used: bool
) -> None:
    """Unload `(base, adapter)` (best effort). The builtin worker keeps a base another deployment
    still uses (`base_still_used`) and drops only the adapter."""
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=30.0) as client:
            if backend.kind == "builtin":
                body = {"base": base, "adapter": adapter} if base_still_used and adapter else {"base": base}
                if not base_still_used or adapter:
                    await client.post(f"{backend.root_url}/admin/unload", json=body, headers=backend.headers)
            elif adapter is not None:
                name = vllm.lora_module_name(adapter)
                await client.post(
                    f"{backend.root_url}/v1/unload_lora_adapter",
                    json={"lora_name": name},
                    headers=backend.headers,
                )
                backend.adapters.pop(name, None)


async def worker_stats(backend: BackendProcess) -> dict[str, Any] | None:
    """The builtin worker's `/admin/stats` (what is loaded, active generations); None otherwise."""
    if backend.kind != "builtin" or not backend.alive:
        return None
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{backend.root_url}/admin/stats", headers=backend.headers)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None
