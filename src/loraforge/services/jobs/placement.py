"""Placement: which node a queued job starts on, read from the `nodes` table (admission's part of the
operations feature; node statuses are computed in `services.operations.node_status`, which is above jobs,
so only the stored rows are read here).

- Local executor: the one node is the server's host (the `local` row). While it is not `ready`
  (draining, drained, unhealthy, lost) nothing is admitted: jobs wait in the queue. A job's
  `excluded_nodes` is not applied here: with one node, excluding it would strand the job for good
  (a "drain now" holds it back through the node's status instead, until the node is undrained). No row
  yet (before the operations loop's first round): admitted as before nodes existed, with no node.
- Ray: the candidates are the `ray` rows that are `ready`, not drained, not in the job's
  `excluded_nodes`, with at least as many GPUs as the job needs; the one with the fewest active jobs
  wins (then the lowest id). No `ray` row at all (the node sync has not run): launched unpinned as
  before. Rows, but no candidate: the job waits.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, SCHEDULABLE, Job, Node

LOCAL_KIND, RAY_KIND = "local", "ray"
_READY = frozenset(s.value for s in SCHEDULABLE)


@dataclass(frozen=True)
class Placement:
    """Where one job starts: `node_id` (None: no node row to name) and the executor's id for it
    (`external`; None: the executor places it itself)."""

    node_id: int | None = None
    external: str | None = None


def _usable(node: Node) -> bool:
    return node.status in _READY and node.drain_mode is None


def _gpu_count(node: Node) -> int:
    gpus = (node.info or {}).get("gpus")
    return len(gpus) if isinstance(gpus, list) else 0


@dataclass
class Placer:
    """The nodes as one admission round sees them; `place` counts each job it places, so the next one
    goes to the next least busy node."""

    kind: str
    nodes: list[Node] = field(default_factory=list)
    busy: dict[int, int] = field(default_factory=dict)

    @property
    def closed(self) -> bool:
        """Nothing can start this round (the local node is not ready)."""
        return self.kind == LOCAL_KIND and bool(self.nodes) and not _usable(self.nodes[0])

    def place(self, need: int, excluded: Collection[int] = ()) -> Placement | None:
        """The node for a job needing `need` GPUs that must not go to `excluded` (its `excluded_nodes`;
        Ray only), or None: it waits."""
        if not self.nodes:
            return Placement()
        if self.kind == LOCAL_KIND:
            node = self.nodes[0]
            return Placement(node_id=node.id) if _usable(node) else None
        candidates = [n for n in self.nodes if _usable(n) and n.id not in excluded and _gpu_count(n) >= need]
        if not candidates:
            return None
        best = min(candidates, key=lambda n: (self.busy.get(n.id, 0), n.id))
        self.busy[best.id] = self.busy.get(best.id, 0) + 1
        return Placement(node_id=best.id, external=best.external_id)


def placer(session: Session, executor_name: str) -> Placer:
    """The nodes `executor_name` ("local" or "ray") places on, with their active job counts."""
    kind = RAY_KIND if executor_name == RAY_KIND else LOCAL_KIND
    rows = list(session.scalars(select(Node).where(Node.kind == kind).order_by(Node.id)))
    busy: dict[int, int] = {}
    if rows:
        counts = session.execute(
            select(Job.node_id, func.count())
            .where(Job.node_id.in_([n.id for n in rows]), Job.status.in_([s.value for s in ACTIVE]))
            .group_by(Job.node_id)
        ).all()
        busy = {node_id: int(count) for node_id, count in counts if node_id is not None}
    return Placer(kind=kind, nodes=rows[:1] if kind == LOCAL_KIND else rows, busy=busy)


def other_node_exists(session: Session, executor_name: str, job: Job, need: int) -> bool:
    """Whether `job` could be placed now on a node other than the one it runs on (a migration's
    precondition; the move excludes just that node). The local executor has one node: never."""
    if executor_name != RAY_KIND:
        return False
    found = placer(session, RAY_KIND).place(need, [job.node_id] if job.node_id is not None else [])
    return found is not None and found.node_id is not None
