"""The export's expected failures, each with the stable code its `error` event carries.

Codes are part of the event protocol (the platform and the UI key help texts on them): never rename.
"""

from __future__ import annotations

from loraforge.engine.failures import EngineError


class ExportError(EngineError):
    code = "invalid_input"


class DiskFullError(ExportError):
    code = "disk_full"


class UnknownTokenizerError(ExportError):
    code = "unknown_tokenizer"


class AdapterAddsTokensError(ExportError):
    code = "adapter_adds_tokens"


class UnsupportedArchitectureError(ExportError):
    code = "unsupported_architecture"


class QuantizationUnavailableError(ExportError):
    code = "quantization_unavailable"


class VerificationFailedError(ExportError):
    """The written file could not be loaded back by the independent reader."""

    code = "verification_failed"


class ExportCancelled(Exception):
    """SIGTERM between two tensors (or two phases): partial files are removed, the job ends `cancelled`."""
