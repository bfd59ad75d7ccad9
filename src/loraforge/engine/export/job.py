"""An export job: what `python -m loraforge.engine run RUN_DIR` does for `"stage": "export"`, and what
`loraforge export` runs in the foreground.

    status exporting -> metric events (step = tensors written of total_steps) -> status verifying
    -> artifact events -> status succeeded;  RUN_DIR/output/<files> + RUN_DIR/output/export.json

Failures are one `error` event with a stable code (`errors.py`) and `failed`. SIGTERM is polled
between tensors and between phases: the job removes every file it wrote and ends `cancelled`.
A LoRA source for gguf/ollama is merged into a scratch folder first (deleted afterwards).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraforge.engine.events import EventWriter
from loraforge.engine.export.errors import ExportCancelled
from loraforge.engine.export.spec import K_QUANTS, ExportSpec, parse_export_spec
from loraforge.engine.failures import EngineError

EXPORT_FILE = "export.json"
Stop = Callable[[], bool]


class _Progress:
    """Metric events per tensor: step/total_steps, progress, elapsed and ETA."""

    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (total - done) if done else None
        self.writer.emit(
            "metric",
            step=done,
            total_steps=total,
            progress=round(done / total, 4) if total else 1.0,
            elapsed_s=round(elapsed, 3),
            eta_s=round(eta, 3) if eta is not None else None,
        )


def file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def skipped_verification() -> dict[str, Any]:
    return {
        "ok": False,
        "reader": "",
        "prompt": "",
        "tokens_compared": 0,
        "agreement": 0.0,
        "identical": False,
        "detail": "verification skipped (verify: false)",
    }


def _check_stop(stop: Stop) -> None:
    if stop():
        raise ExportCancelled()


def _gguf(
    spec: ExportSpec, out: Path, scratch: Path, writer: EventWriter, stop: Stop, free_bytes: int | None
) -> tuple[list[Path], dict[str, Any], dict[str, Any]]:
    """gguf / ollama: (files written, verification, source info)."""
    from loraforge.engine.export import kquants
    from loraforge.engine.export.gguf_convert import write_gguf
    from loraforge.engine.export.gguf_names import read_model_info

    model = Path(spec.model_name_or_path)
    source = model
    if spec.adapter_name_or_path:
        from loraforge.engine.merge import merge_adapter

        writer.log("merging the LoRA adapter into its base model")
        source = merge_adapter(spec.adapter_name_or_path, scratch / "merged", base_model=model)
        _check_stop(stop)
    info = read_model_info(source)
    quant = spec.quantization or "q8_0"
    target = out / f"model-{quant}.gguf"
    files: list[Path] = [target]
    if quant in K_QUANTS:
        # llama.cpp's quantizer works from an unquantized GGUF; ours is written to the scratch folder.
        f16 = write_gguf(
            source,
            scratch / "model-f16.gguf",
            "f16",
            name=spec.name,
            progress=_Progress(writer),
            stop=stop,
            free_bytes=free_bytes,
        )
        _check_stop(stop)
        writer.log(f"quantizing to {quant} with llama.cpp")
        kquants.quantize(f16.path, target, quant)
        tensors = f16.tensors
    else:
        tensors = write_gguf(
            source,
            target,
            quant,
            name=spec.name,
            progress=_Progress(writer),
            stop=stop,
            free_bytes=free_bytes,
        ).tensors
    if spec.format == "ollama":
        files.append(_write_modelfile(spec, source, target, out))
    _check_stop(stop)
    verification = skipped_verification()
    if spec.verify:
        from loraforge.engine.export.verify import source_tokens, verify_gguf

        writer.status("verifying")
        adapter = Path(spec.adapter_name_or_path) if spec.adapter_name_or_path else None
        expected = source_tokens(model, adapter)
        _check_stop(stop)
        verification = verify_gguf(target, quant, expected)
    return files, verification, {"arch": info.hf_arch, "gguf_arch": info.arch, "tensors": tensors}


def _write_modelfile(spec: ExportSpec, source: Path, gguf_path: Path, out: Path) -> Path:
    from transformers import AutoTokenizer

    from loraforge.engine.export.ollama import detect_layout, modelfile

    tok = AutoTokenizer.from_pretrained(str(source))
    template = spec.template if spec.template != "auto" else detect_layout(tok.chat_template)
    path = out / "Modelfile"
    path.write_text(modelfile(gguf_path.name, template, tok.eos_token or ""), encoding="utf-8")
    return path


def _gguf_lora(
    spec: ExportSpec, out: Path, writer: EventWriter, stop: Stop, free_bytes: int | None
) -> tuple[list[Path], dict[str, Any], dict[str, Any]]:
    from loraforge.engine.export.gguf_lora import write_gguf_lora
    from loraforge.engine.export.gguf_names import read_model_info

    assert spec.adapter_name_or_path is not None  # parse_export_spec requires it
    adapter, base = Path(spec.adapter_name_or_path), Path(spec.model_name_or_path)
    quant = spec.quantization or "f16"
    target = out / f"adapter-{quant}.gguf"
    n = write_gguf_lora(
        adapter,
        base,
        target,
        quant,
        name=spec.name,
        progress=_Progress(writer),
        stop=stop,
        free_bytes=free_bytes,
    )
    _check_stop(stop)
    verification = skipped_verification()
    if spec.verify:
        from loraforge.engine.export.verify_lora import verify_gguf_lora

        writer.status("verifying")
        verification = verify_gguf_lora(target, adapter, base, quant)
    return [target], verification, {"arch": read_model_info(base).hf_arch, "tensors": n}


def _merged(
    spec: ExportSpec, out: Path, writer: EventWriter, stop: Stop
) -> tuple[list[Path], dict[str, Any], dict[str, Any]]:
    from loraforge.engine.merge import merge_adapter

    assert spec.adapter_name_or_path is not None
    staging = out / ".merged-partial"
    merge_adapter(spec.adapter_name_or_path, staging, base_model=spec.model_name_or_path)
    files = []
    for p in sorted(staging.iterdir()):
        files.append(out / p.name)
        p.replace(out / p.name)
    staging.rmdir()
    _check_stop(stop)
    verification = skipped_verification()
    if spec.verify:
        from loraforge.engine.export.verify import compare, source_tokens

        writer.status("verifying")
        expected = source_tokens(Path(spec.model_name_or_path), Path(spec.adapter_name_or_path))
        verification = compare("transformers", expected, source_tokens(out), exact=True)
    return files, verification, {}


def _commands(spec: ExportSpec, files: list[Path]) -> dict[str, str]:
    from loraforge.engine.export.ollama import create_command

    main = files[0].name if files else ""
    if spec.format == "gguf":
        return {"llama_cli": f"llama-cli -m {main} -cnv"}
    if spec.format == "ollama":
        return {"ollama": create_command(spec.name), "llama_cli": f"llama-cli -m {main} -cnv"}
    if spec.format == "gguf_lora":
        return {"llama_cli": f"llama-cli -m BASE_MODEL.gguf --lora {main} -cnv"}
    return {}


def run_export(
    spec: ExportSpec, out: Path, writer: EventWriter, stop: Stop, *, free_bytes: int | None = None
) -> dict[str, Any]:
    """Writes the export into OUT (+ OUT/export.json) and returns export.json's content.

    On any failure or cancellation every file this call wrote is removed before the exception
    propagates. `free_bytes` replaces the disk's free space in the disk check (tests).
    """
    out.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out.iterdir()}
    writer.status("exporting", f"{spec.format} {spec.quantization or ''}".strip())
    try:
        with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
            scratch = Path(tmp)
            source: dict[str, Any] = {}
            if spec.format == "onnx":
                from loraforge.engine.export.onnx_export import export_onnx

                result = export_onnx(spec.as_dict(), out, writer)
                entries, verification = result["files"], result["verification"]
                files = [out / e["name"] for e in entries]
            else:
                if spec.format in ("gguf", "ollama"):
                    files, verification, source = _gguf(spec, out, scratch, writer, stop, free_bytes)
                elif spec.format == "gguf_lora":
                    files, verification, source = _gguf_lora(spec, out, writer, stop, free_bytes)
                else:
                    files, verification, source = _merged(spec, out, writer, stop)
                entries = [file_entry(p) for p in files]
        _check_stop(stop)
        document = {
            "format": spec.format,
            "quantization": spec.quantization,
            "files": entries,
            "verification": verification,
            "commands": _commands(spec, files),
            "source": {"model": spec.model_name_or_path, "adapter": spec.adapter_name_or_path, **source},
        }
        (out / EXPORT_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
    except BaseException:
        for p in out.iterdir():
            if p.name not in before:  # only what this export wrote
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        raise
    if not verification.get("ok") and spec.verify:
        writer.log(f"verification did not pass: {verification.get('detail')}", level="warning")
    for entry in entries:
        writer.emit("artifact", kind=f"export_{spec.format}", path=str(out / entry["name"]))
    writer.emit("artifact", kind="export_manifest", path=str(out / EXPORT_FILE))
    return document


def fail(writer: EventWriter, exc: EngineError) -> int:
    writer.emit("error", code=exc.code, message=exc.message, suggestion=exc.suggestion, details=exc.details)
    writer.status("failed", exc.message.splitlines()[0] if exc.message else None)
    return 1


def run_export_job(run_dir: Path, raw: dict[str, Any], writer: EventWriter, stop: Stop) -> int:
    """Run the job; the process exit status (0 also for `cancelled`)."""
    try:
        spec = parse_export_spec(raw)
        run_export(spec, run_dir / "output", writer, stop)
    except ExportCancelled:
        writer.status("cancelled", "export cancelled; its partial files were removed")
        return 0
    except EngineError as exc:
        return fail(writer, exc)
    writer.status("succeeded")
    return 0
