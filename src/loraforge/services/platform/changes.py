"""Partial updates (a PATCH body as a `changes` dict): the fields that may be omitted but not nulled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from loraforge.errors import FieldIssue, InvalidInput


def refuse_nulls(changes: Mapping[str, Any], keys: Iterable[str], *, first_only: bool = False) -> None:
    """InvalidInput when `changes` sets any of `keys` to null, named in the message (the first, in
    `keys` order) and in `fields` (every one, or only that first one with `first_only`)."""
    nulled = [key for key in keys if key in changes and changes[key] is None]
    issues = [FieldIssue(field=key, message="cannot be null") for key in nulled]
    if issues:
        raise InvalidInput(f"{issues[0].field} cannot be null", fields=issues[:1] if first_only else issues)
