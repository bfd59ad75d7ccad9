"""Serving the built single-page app with a history-mode fallback.

Called from the 404 handler rather than mounted as a catch-all route: a catch-all would match every
path and turn "wrong method on a real API route" (405) into something else.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response

# Paths that belong to the server, never to the SPA: unknown ones answer with the error shape.
RESERVED_PREFIXES = ("/api", "/v1", "/metrics")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LoRAForge</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>LoRAForge</h1>
<p>The server is running, but the web UI has not been built.</p>
<p>Build it with the README's setup command (it runs <code>npm run build</code> in <code>frontend/</code>),
or use the API: <a href="/api/docs">/api/docs</a>.</p>
</body></html>
"""


class SpaFiles:
    def __init__(self, dist_dir: Path) -> None:
        self.dist_dir = dist_dir.resolve()

    def _file(self, url_path: str) -> Path | None:
        relative = url_path.lstrip("/")
        if not relative:
            return None
        candidate = (self.dist_dir / relative).resolve()
        # resolve() follows `..` and links; anything that lands outside dist is not ours to serve.
        if not candidate.is_relative_to(self.dist_dir) or not candidate.is_file():
            return None
        return candidate

    def response_for(self, url_path: str) -> Response | None:
        """The response for a GET of `url_path`, or None when it should be a 404."""
        if any(url_path == prefix or url_path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES):
            return None
        found = self._file(url_path)
        if found is not None:
            immutable = found.parent.name == "assets"  # Vite puts content-hashed files here
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(found, headers={"Cache-Control": cache})
        if "." in url_path.rsplit("/", 1)[-1]:
            return None  # a missing file (e.g. /assets/old.js) is a 404, not the app shell
        index = self.dist_dir / "index.html"
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(NOT_BUILT_PAGE)
