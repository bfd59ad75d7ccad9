"""Per-route request body limits: declared by the routes that take uploads, enforced by the
body-size middleware (`api.middleware`)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteBodyLimit:
    """A larger (or smaller) body limit for requests whose method and path match, e.g. uploads."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
