"""The LoRAForge training engine.

This package file stays import-light on purpose (no torch, transformers or datasets): the server
imports `loraforge.engine.spec` (with `spec_fields` and `spec_loading`) and `loraforge.engine.events`,
and must start without torch. Heavy libraries are imported inside the modules and functions that
need them.
"""
