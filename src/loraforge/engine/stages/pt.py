"""Pretraining (continued): plain next-token prediction on text, same trainer as SFT; the data
layer decides what is in the labels (every token) and whether rows are packed."""

from __future__ import annotations

from loraforge.engine.stages.sft import build_trainer

NEEDS_CHAT_TEMPLATE = False

__all__ = ["NEEDS_CHAT_TEMPLATE", "build_trainer"]
