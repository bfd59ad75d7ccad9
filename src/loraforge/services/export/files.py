"""A version's own files, one by one (for resumable single-file downloads): the listing is the
version folder's top-level regular files; a requested name is looked up in that listing, never joined
onto a path. Works for every version with files here (exports and safetensors alike).

ETag: an export's recorded sha256 of the file (export.json); for files without one (a trained
adapter, a registered folder), a weak tag from size and modification time — hashing gigabytes per
request would cost more than the download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.errors import Conflict, NotFound
from loraforge.services.models.catalog import get_version
from loraforge.services.models.versions import effective_status, version_folder
from loraforge.settings import Settings


@dataclass(frozen=True)
class VersionFile:
    name: str
    size: int
    sha256: str | None
    path: Path

    @property
    def etag(self) -> str:
        if self.sha256:
            return f'"{self.sha256}"'
        stat = self.path.stat()
        return f'W/"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def list_files(session: Session, *, settings: Settings, actor: User, version_id: int) -> list[VersionFile]:
    """The files of a `ready` version the actor may read (404 otherwise, like the version itself)."""
    model, version = get_version(session, actor=actor, version_id=version_id)
    if effective_status(session, version) != "ready":
        raise Conflict(f"{model.name}@v{version.number} is not ready", code="model_not_ready")
    folder = version_folder(settings, version)
    recorded = {
        f.get("name"): f.get("sha256")
        for f in ((version.info or {}).get("export") or {}).get("files") or []
        if isinstance(f, dict)
    }
    out: list[VersionFile] = []
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if entry.is_symlink() or not entry.is_file() or entry.name.startswith("."):
                continue
            digest = recorded.get(entry.name)
            sha = digest if isinstance(digest, str) else None
            out.append(VersionFile(entry.name, entry.stat().st_size, sha, entry))
    return out


def find_file(
    session: Session, *, settings: Settings, actor: User, version_id: int, name: str
) -> VersionFile:
    for item in list_files(session, settings=settings, actor=actor, version_id=version_id):
        if item.name == name:
            return item
    raise NotFound(f"this version has no file named {name!r}", code="file_not_found")
