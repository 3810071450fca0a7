"""KindCluster: one cluster's lifecycle, usable with or without pytest.

::

    with KindCluster("demo", workers=2) as cluster:
        print(cluster.kubectl("get", "nodes"))

The method and attribute names follow pytest-kind's ``KindCluster`` (``name``,
``kubeconfig_path``, ``kubectl``, ``load_docker_image``, ``create``, ``delete``), so its users
can switch by changing the dependency.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_kindcluster.cluster import kubectl as host_kubectl
from pytest_kindcluster.cluster import logs
from pytest_kindcluster.cluster.base import ClusterBase
from pytest_kindcluster.cluster.image_load import load_image
from pytest_kindcluster.cluster.ownership import Owner, cluster_labels
from pytest_kindcluster.cluster.reaper import sweep
from pytest_kindcluster.cluster.rollback import (
    Cleanup,
    abandon,
    failure_notes,
    one_line,
    remove_cluster,
    roll_back,
)
from pytest_kindcluster.cluster.snapshot import refuse_high_availability
from pytest_kindcluster.cluster.warm import create_from_snapshot
from pytest_kindcluster.config import ClusterConfig, load_config
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE, RETAIN_CHOICES, Retain
from pytest_kindcluster.errors import (
    ConfigError,
    ImageError,
    KindClusterError,
    ReadinessTimeout,
)
from pytest_kindcluster.provision import ClusterSpec, StepContext, build_steps, run_steps
from pytest_kindcluster.provision.access import export_kubeconfig, wait_cluster_ready
from pytest_kindcluster.provision.restore import network_name
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import (
    HostImages,
    Node,
    NodeRuntime,
)
from pytest_kindcluster.util.interrupts import shielded
from pytest_kindcluster.util.progress import LogProgress, PhaseTiming, Progress

# Private per-cluster directories in the temp dir: <prefix><cluster name>-<random>.
KUBECONFIG_DIR_PREFIX = "kindcluster-"


class KindCluster(ClusterBase):
    """A kind-compatible cluster of node containers; create it, use it, delete it."""

    def __init__(
        self,
        name: str,
        *,
        image: str | None = None,
        workers: int = 0,
        config: ClusterConfig | str | os.PathLike[str] | None = None,
        timeout: float = 300.0,
        retain: Retain = "never",
        reuse: bool = False,
        logs_dir: Path | None = None,
        kubeconfig: Path | None = None,
        runtime: NodeRuntime | None = None,
        images: HostImages | None = None,
        progress: Progress | None = None,
        run_id: str | None = None,
        owner_pid: int | None = None,
        snapshot: bool = False,
    ) -> None:
        if retain not in RETAIN_CHOICES:
            raise ConfigError(f"retain must be one of {', '.join(RETAIN_CHOICES)}, got {retain!r}")
        # image=None means the default, as in pytest-kind's constructor.
        if config is not None and not isinstance(config, ClusterConfig):
            config = load_config(config)
        self.spec = ClusterSpec(name, image or DEFAULT_NODE_IMAGE, workers, timeout, config=config)
        #: Boot from a snapshot of a ready cluster with the same inputs (made on first use).
        self.snapshot = snapshot
        if snapshot:
            refuse_high_availability(self.spec.cluster_config)
        self.retain: Retain = retain
        self.reuse = reuse
        self.logs_dir = logs_dir
        self.run_id = run_id or secrets.token_hex(4)
        # The process whose death makes the cluster an orphan to reap: under xdist the
        # controller, which outlives the worker that happens to create the cluster.
        self.owner = Owner.of(owner_pid)
        self._runtime = runtime
        self._images = images
        self._progress = progress or LogProgress()
        self._own_kubeconfig_dir = kubeconfig is None
        self.kubeconfig_path = kubeconfig or (
            Path(tempfile.mkdtemp(prefix=f"{KUBECONFIG_DIR_PREFIX}{name}-")) / "kubeconfig"
        )
        self._ctx: StepContext | None = None
        self._kubectl: Path | None = None
        #: True when ``create()`` attached to an existing cluster instead of making one.
        self.reused = False
        #: Seconds from the start of ``create()`` until every readiness check passed.
        self.ready_seconds: float | None = None
        #: What ``create()`` reported about other runs' leftovers (removed, left alone, warnings).
        self.reap_notes: list[str] = []
        #: With ``snapshot``: "booted from snapshot <id> (...)" or "created cold: <why>".
        self.warm_start: str | None = None

    # -- the pytest-kind surface ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The cluster's name (``kind get clusters`` lists it)."""
        return self.spec.name

    @property
    def nodes(self) -> list[Node]:
        """The Kubernetes nodes' handles (not the HA load balancer), in name order."""
        return list(self._context().kube_nodes)

    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (not the library's global one)."""
        return self._context().api_client

    @property
    def runtime(self) -> NodeRuntime | None:
        """The engine the cluster lives in; None until given or first connected."""
        return self._runtime

    @property
    def timings(self) -> list[PhaseTiming]:
        """How long each phase of ``create()`` took."""
        return list(self._ctx.timings) if self._ctx else []

    @property
    def checks_passed(self) -> dict[str, float]:
        """When each readiness check first passed, in seconds into the ``ready`` phase."""
        return dict(self._ctx.checks_passed) if self._ctx else {}

    @property
    def kubectl_path(self) -> Path:
        """The node image's own kubectl, copied out once and cached by image ID (else PATH's)."""
        if self._kubectl is None:
            image = self.spec.cluster_config.control_planes[0].image or self.spec.image
            images = (self._ctx or self._new_context()).images
            self._kubectl = host_kubectl.require(images, image, ImageError)
        return self._kubectl

    def exec_in_node(self, *argv: str, node: str | None = None, stdin: str | None = None) -> str:
        """Run ``argv`` inside a node (the control plane unless ``node`` names another).

        Control planes have ``KUBECONFIG=/etc/kubernetes/admin.conf``, so ``exec_in_node(
        "kubectl", ...)`` works there even when this host cannot reach the published apiserver
        port (a remote engine). Raises :class:`CommandFailed` on a non-zero exit.
        """
        ctx = self._context()
        target = ctx.control_plane if node is None else ctx.node(node)
        return target.exec(*argv, stdin=stdin).stdout

    def load_docker_image(self, image: str) -> list[str]:
        """Copy a host image into every node that lacks it; returns the nodes it was loaded on."""
        ctx = self._context()
        arch = ctx.info.arch if ctx.info else "amd64"
        return load_image(ctx.images, ctx.nodes, image, arch=arch)

    def export_logs(self, dest: str | os.PathLike[str]) -> Path:
        """Write every node's logs under ``dest/<node>/`` and return ``dest``."""
        ctx = self._context()
        return logs.export_logs(ctx.runtime, ctx.nodes, Path(dest))

    # -- lifecycle ------------------------------------------------------------------------------

    def create(self, config_file: str | os.PathLike[str] | None = None) -> KindCluster:
        """Create the cluster (or attach to it when reusing) and wait until it is ready.

        ``config_file`` (pytest-kind's signature) is a kind cluster YAML; it replaces the
        config given to the constructor.
        """
        if config_file is not None:
            self.spec = replace(self.spec, workers=0, config=load_config(config_file))
            if self.snapshot:
                refuse_high_availability(self.spec.cluster_config)
        started = time.monotonic()
        try:
            ctx = self._new_context()
            self._ctx = ctx
            self._reap_orphans(ctx)
        except BaseException:
            self._drop_own_kubeconfig()  # nothing else exists yet
            raise
        if self.reuse and ctx.runtime.list_nodes(self.name):
            self._attach(ctx)
        else:
            config = self.spec.cluster_config
            planes, workers = len(config.control_planes), len(config.workers)
            extra = f" + {workers} worker(s)" if workers else ""
            extra += " behind a load balancer" if config.high_availability else ""
            planes_text = f"{planes} control plane{'s' if planes > 1 else ''}"
            plan = f"creating cluster: {planes_text}{extra}, image {self.spec.image}"
            ctx.progress.note(self.name, plan)
            try:
                if self.snapshot:
                    self.warm_start = create_from_snapshot(ctx, logs_dir=self._failure_logs_dir)
                else:
                    run_steps(build_steps(self.spec), ctx)
            except Exception as exc:
                error = self._fail(ctx, exc)
                if error is exc:
                    raise
                raise error from exc
            except BaseException as interrupt:
                # Ctrl-C or SIGTERM (see signals.py) mid-create: no teardown will ever run for
                # a cluster that was never handed out, so remove it now, without a log export.
                if self.retain == "never":
                    abandon(ctx, interrupt)
                    self._forget_kubeconfig()
                raise
        self.ready_seconds = time.monotonic() - started
        verb = "reused and ready" if self.reused else "ready"
        ctx.progress.note(self.name, f"{verb} in {self.ready_seconds:.1f}s")
        return self

    def delete(self) -> None:
        """Remove the nodes with their volumes and the kubeconfig; never the shared network.

        Every part is attempted even when an earlier one fails, and a signal does not cut the
        removal short (see util/interrupts.py). The first failure is raised, the others and what
        is left behind are notes on it.
        """
        cleanup = Cleanup()
        with shielded():
            self.detach()
            ctx = self._ctx or self._new_context()
            remove_cluster(ctx.runtime, self.name, self.spec.network, cleanup)
            # A cluster booted from a snapshot has a network of its own (whoever deletes it).
            own = network_name(self.name)
            cleanup.attempt("remove the network", lambda: ctx.runtime.remove_network(own))
            self._forget_kubeconfig()
        cleanup.raise_first()

    def adopt(self) -> KindCluster:
        """Take charge of an existing cluster's nodes without waiting for it (to delete it).

        For a process that did not create the cluster but decides its fate, as the xdist
        controller does; ``close()`` then applies the retention policy as usual.
        """
        self._ctx = self._ctx or self._new_context()
        self._adopt(self._ctx)
        return self

    def detach(self) -> None:
        """Stop using the cluster and leave it as it is (another process owns its fate)."""
        if self._ctx is not None and self._ctx.api_client is not None:
            self._ctx.api_client.close()
            self._ctx.api_client = None

    def close(self, *, failed: bool = False, export_logs: bool | None = None) -> None:
        """End of use: delete, or keep the cluster as the retention policy and reuse ask.

        Logs are exported first when ``export_logs`` is true; by default that is when the use
        failed and the policy is ``on-failure`` (a kept cluster plus its logs is the evidence).
        """
        keep = self.reused or self.reuse or self.retain == "always"
        keep = keep or (failed and self.retain == "on-failure")
        if export_logs is None:
            export_logs = failed and self.retain == "on-failure"
        cleanup = Cleanup()
        with shielded():
            if export_logs and self._ctx is not None and self._ctx.nodes:

                def export() -> None:
                    dest = self.export_logs(self._failure_logs_dir())
                    self._progress.note(self.name, f"logs exported to {dest}")

                cleanup.attempt("export the logs", export)
            if keep:
                why = "reused" if self.reused or self.reuse else f"retain={self.retain}"
                where = (
                    str(self.kubeconfig_path)
                    if self.kubeconfig_path.exists()
                    else f"`kind get kubeconfig --name {self.name}`"
                )
                self._progress.note(self.name, f"kept ({why}); kubeconfig: {where}")
                self.detach()
            elif cleanup.attempt("delete the cluster", self.delete):
                self._progress.note(self.name, "deleted")
            else:
                failure = cleanup.failures[-1][1]
                for line in [f"deletion failed: {one_line(failure)}", *failure_notes(failure)]:
                    self._progress.note(self.name, line)
        cleanup.raise_first()

    # -- internals ------------------------------------------------------------------------------

    def _context(self) -> StepContext:
        if self._ctx is None or not self._ctx.nodes:
            raise KindClusterError(f"cluster {self.name!r} is not created; call create() first")
        return self._ctx

    def _new_context(self) -> StepContext:
        if self._runtime is None or self._images is None:
            engine = connect_engine()
            self._runtime = self._runtime or engine
            self._images = self._images or engine
        retain = "reuse" if self.reuse else self.retain
        return StepContext(
            spec=self.spec,
            runtime=self._runtime,
            images=self._images,
            progress=self._progress,
            kubeconfig_path=self.kubeconfig_path,
            run_id=self.run_id,
            labels=cluster_labels(self.owner, self.run_id, retain),
        )

    def _reap_orphans(self, ctx: StepContext) -> None:
        """Remove clusters of killed runs first, before another cluster competes with them.

        Best effort: a failure with someone else's leftovers is a warning, never ours.
        """
        spare = {self.name} if self.reuse else set()
        try:
            lines = sweep(ctx.runtime.resources(), spare=spare).lines()
        except KindClusterError as exc:
            lines = [f"warning: could not look for leftovers of crashed runs: {exc}"]
        self.reap_notes = lines
        for line in lines:
            ctx.progress.note(self.name, line)

    def _attach(self, ctx: StepContext) -> None:
        """Reuse: adopt the existing nodes, refresh the kubeconfig, and insist on readiness."""
        ctx.progress.note(self.name, "reusing the existing cluster")
        self._adopt(ctx)
        self.reused = True
        try:
            export_kubeconfig(ctx)
            wait_cluster_ready(ctx)
        except ReadinessTimeout as exc:
            dest = self.export_logs(self._failure_logs_dir())
            raise ReadinessTimeout(exc.timeout, exc.last_state, logs_dir=str(dest)) from exc

    def _adopt(self, ctx: StepContext) -> None:
        ctx.info = ctx.runtime.info()
        ctx.nodes = ctx.runtime.list_nodes(self.name)  # sorted by name: control plane first

    def _fail(self, ctx: StepContext, exc: Exception) -> KindClusterError:
        """Export logs, roll back unless retained, and say what failed with the evidence."""
        exported: list[Path] = []

        def logs_dir() -> Path:
            exported.append(self._failure_logs_dir())
            return exported[-1]

        error, kept = roll_back(ctx, exc, keep=self.retain != "never", logs_dir=logs_dir)
        if not kept:
            self._forget_kubeconfig()
        if exported:  # for the terminal summary; the error says it too
            self._progress.note(self.name, f"creation failed; logs exported to {exported[-1]}")
        return error

    def _failure_logs_dir(self) -> Path:
        base = self.logs_dir or Path(tempfile.mkdtemp(prefix="kind-logs-"))
        return base / self.name

    def _drop_own_kubeconfig(self) -> None:
        if self._own_kubeconfig_dir:
            shutil.rmtree(self.kubeconfig_path.parent, ignore_errors=True)
        else:
            self.kubeconfig_path.unlink(missing_ok=True)
            for made in ("certs", "cache"):  # the loader's certificates, kubectl's cache
                shutil.rmtree(self.kubeconfig_path.parent / made, ignore_errors=True)

    def _forget_kubeconfig(self) -> None:
        self._drop_own_kubeconfig()
        # Kept clusters keep their kubeconfig; once the cluster is gone, so are those files.
        # mkdtemp's random suffix has no "-", which tells "demo-x1y2" from cluster "demo-2"'s.
        prefix = f"{KUBECONFIG_DIR_PREFIX}{self.name}-"
        for stale in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            if "-" not in stale.name.removeprefix(prefix):
                shutil.rmtree(stale, ignore_errors=True)
