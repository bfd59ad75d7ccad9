"""LoRAForge: a self-hosted, multi-user platform for fine-tuning open LLMs."""

__version__ = "0.1.0"
