"""Files the settings own: paths below the data directory, and secrets generated there on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Protocol, overload


class _HasDataDir(Protocol):
    @property
    def data_dir(self) -> Path: ...


class UnderDataDir:
    """A path below the settings' `data_dir`, computed on each access (a class attribute of Settings)."""

    def __init__(self, *parts: str, doc: str | None = None) -> None:
        self.parts = parts
        self.__doc__ = doc

    @overload
    def __get__(self, settings: None, owner: type[Any] | None = None) -> UnderDataDir: ...
    @overload
    def __get__(self, settings: _HasDataDir, owner: type[Any] | None = None) -> Path: ...
    def __get__(self, settings: _HasDataDir | None, owner: type[Any] | None = None) -> UnderDataDir | Path:
        if settings is None:
            return self
        return settings.data_dir.joinpath(*self.parts)


def load_or_create_secret_file(path: Path) -> str:
    """Read a secret from `path`, creating it (random, mode 0600) on first use.

    O_EXCL makes concurrent first starts agree on one secret: the loser reads the winner's file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise RuntimeError(f"secret file {path} is empty; delete it to generate a new one") from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value
