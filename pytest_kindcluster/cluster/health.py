"""Notice when a node container stops mid-session, and say so instead of letting tests time out.

When a node dies (OOM-killed, ``docker kill``ed, the engine restarted), every later test
would otherwise fail with a connection error to a dead apiserver, or hang in a wait, with
nothing pointing at the cause. Before each test that uses a cluster, one engine query per node
checks that the containers still run; the first time one does not, the cluster's logs are
exported, and that test and every later one fail with the same message and the logs path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_kindcluster.errors import ClusterDown, KindClusterError
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.util.progress import Progress


def stopped_nodes(nodes: Sequence[Node]) -> list[str]:
    """A description of each node container that is not running (or not there at all)."""
    found = []
    for node in nodes:
        try:
            details = node.details()
        except KindClusterError as exc:
            found.append(f"{node.name}: cannot be inspected ({exc})")
            continue
        if details.state == "running":
            continue
        state = dict(details.inspect.get("State") or {})
        facts = [f"exit code {state['ExitCode']}"] if "ExitCode" in state else []
        if state.get("OOMKilled"):
            facts.append("killed for lack of memory")
        if state.get("FinishedAt"):
            facts.append(f"at {state['FinishedAt']}")
        found.append(f"{node.name}: {details.state}" + (f" ({', '.join(facts)})" if facts else ""))
    return found


class NodeWatch:
    """Checks one cluster's nodes before each test; remembers the first failure."""

    def __init__(
        self,
        cluster: str,
        nodes: Callable[[], Sequence[Node]],
        export_logs: Callable[[Path], Path],
        *,
        logs_dir: Path | None,
        progress: Progress,
    ) -> None:
        self.cluster = cluster
        self._nodes = nodes
        self._export_logs = export_logs
        self._logs_dir = logs_dir
        self._progress = progress
        self.failure: ClusterDown | None = None

    def check(self) -> None:
        """Raise :class:`ClusterDown` if a node stopped, now or earlier in the session."""
        if self.failure is not None:
            # A fresh exception each time: re-raising one instance would pile up tracebacks.
            raise ClusterDown(str(self.failure), logs_dir=self.failure.logs_dir)
        stopped = stopped_nodes(self._nodes())
        if not stopped:
            return
        base = self._logs_dir or Path(tempfile.mkdtemp(prefix="kind-logs-"))
        try:
            where = str(self._export_logs(base / self.cluster))
        except KindClusterError as exc:
            where = f"(log export failed: {exc})"
        self._progress.note(self.cluster, f"node(s) stopped; logs exported to {where}")
        self.failure = ClusterDown(
            f"cluster {self.cluster!r} lost node container(s) during the session:\n  "
            + "\n  ".join(stopped)
            + "\nthe tests after this point cannot use it; logs exported to "
            + where,
            logs_dir=where,
        )
        raise self.failure
