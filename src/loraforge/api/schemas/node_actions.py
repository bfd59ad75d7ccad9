"""Bodies of the node actions (`api/routes/node_actions.py`); they answer with `NodePublic` and
`JobPublic`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loraforge.api.schemas.common import RequestModel


class NodeDrain(RequestModel):
    mode: Literal["finish", "now"] = Field(
        default="finish",
        description=(
            "`finish`: no new jobs; the running ones finish there. `now`: the running ones are also "
            "stopped at a checkpoint and continue on another node (or here, once undrained)."
        ),
    )
