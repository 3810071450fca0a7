"""Exceptions raised by pytest-kindcluster.

Every error derives from :class:`KindClusterError`, and where a built-in fits it is a base too,
so callers can catch what they already know (``ValueError``, ``TimeoutError``)::

    KindClusterError
    ├── ConfigError (ValueError)              bad settings, cluster YAML or arguments
    ├── PatchError (ValueError)               a kind config patch that cannot be parsed or applied
    ├── RuntimeUnavailable (ConnectionError)  no container engine answers
    ├── EngineError                           the engine refused an operation (what, its message)
    ├── ImageError                            a node image is missing or is not a kind node image
    ├── CommandFailed                         a command exited non-zero (argv, exit code, output)
    ├── ProvisionError                        a create step failed; carries the step and logs path
    ├── ReadinessTimeout (TimeoutError)       the cluster never became usable; last state per check
    ├── ClusterDown                           a node container stopped mid-session; logs path
    ├── ExistingClusterError                  existing-cluster mode cannot do it; no kubectl
    ├── ClusterUnreachable (ConnectionError)  an existing cluster's apiserver does not answer
    ├── PortForwardError (ConnectionError)    no pod or ready backend to forward to
    ├── WaitExpired (TimeoutError)            an internal wait ran out (translated for users)
    ├── LockTimeout (TimeoutError)            xdist: another worker held the create lock too long
    └── BuildError                            the node-image build failed (missing binary, go build)

Apart from the tree, :class:`Interrupted` is a ``KeyboardInterrupt``: a termination signal turned
into the same orderly unwinding as Ctrl-C (see ``signals.py``), never an error to catch.

Errors carry their evidence: the failed command with its output, and the path of exported logs
where there are some, but never a credential: command output is redacted. Foreign exceptions
(docker, kubernetes) are translated at one boundary with ``raise ... from`` so the original stays
visible as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_kindcluster.util.redact import redact


class KindClusterError(Exception):
    """Base class of every error this package raises."""


class ConfigError(KindClusterError, ValueError):
    """Invalid configuration: options, ini values, cluster YAML or call arguments."""


class PatchError(KindClusterError, ValueError):
    """A patch (JSON 6902, merge or TOML) that cannot be parsed, or cannot be applied.

    The config layer reports it as a ConfigError naming the field that holds the patch.
    """


class RuntimeUnavailable(KindClusterError, ConnectionError):
    """The container engine cannot be reached."""


class EngineError(KindClusterError):
    """The container engine answered but refused an operation (create, remove, exec...)."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        self.message = message
        super().__init__(f"container engine failed to {operation}: {message}")


class ImageError(KindClusterError):
    """A node image is not present, cannot be pulled, or does not honour kind's contract."""


class BuildError(KindClusterError):
    """Building the node image or one of its components failed."""


class CommandFailed(KindClusterError):
    """A command run in a node (or by the builder) exited non-zero."""

    def __init__(
        self,
        argv: Sequence[str],
        exit_code: int,
        output: str,
        *,
        node: str | None = None,
        step: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.exit_code = exit_code
        # Errors end up in CI logs; kubeadm and kubectl output can carry tokens and keys.
        self.output = output = redact(output)
        self.node = node
        self.step = step
        where = f" on {node}" if node else ""
        during = f" during {step}" if step else ""
        tail = "\n".join(output.rstrip().splitlines()[-40:])
        super().__init__(
            f"command {redact(' '.join(self.argv))!r}{where}{during} exited {exit_code}\n"
            f"--- last output ---\n{tail}"
        )


class ProvisionError(KindClusterError):
    """A step of the create flow failed."""

    def __init__(self, step: str, message: str, *, logs_dir: str | None = None) -> None:
        self.step = step
        self.message = message
        self.logs_dir = logs_dir
        text = f"step {step!r} failed: {message}"
        if logs_dir:
            text += f"\nlogs exported to {logs_dir}"
        super().__init__(text)


class ReadinessTimeout(KindClusterError, TimeoutError):
    """The cluster did not pass every readiness check within its budget."""

    def __init__(
        self, timeout: float, last_state: dict[str, str], *, logs_dir: str | None = None
    ) -> None:
        self.timeout = timeout
        self.last_state = dict(last_state)
        self.logs_dir = logs_dir
        lines = [f"cluster not ready after {timeout:.0f}s; last observed state:"]
        lines += [f"  {check}: {state}" for check, state in self.last_state.items()]
        if logs_dir:
            lines.append(f"logs exported to {logs_dir}")
        lines.append("on a slow or busy host, give it more time: --kind-timeout (timeout=...)")
        super().__init__("\n".join(lines))


class ClusterDown(KindClusterError):
    """A node container of a cluster in use stopped; later tests cannot use the cluster."""

    def __init__(self, message: str, *, logs_dir: str | None = None) -> None:
        self.logs_dir = logs_dir
        super().__init__(message)


class WaitExpired(KindClusterError, TimeoutError):
    """A wait ran out of time or attempts; callers translate it into a typed error with evidence."""

    def __init__(self, what: str, budget: str, last: str) -> None:
        self.what = what
        self.last = last
        super().__init__(f"gave up waiting for {what} after {budget}; last observed: {last}")


class LockTimeout(KindClusterError, TimeoutError):
    """Another process held a lock past its budget (xdist workers sharing one cluster)."""


class PortForwardError(KindClusterError, ConnectionError):
    """The target cannot be forwarded to (no such pod or Service, no ready backend)."""


class ExistingClusterError(KindClusterError):
    """Existing-cluster mode cannot do this: node containers it lacks, or no kubectl to run."""


class ClusterUnreachable(KindClusterError, ConnectionError):
    """The apiserver of an existing cluster cannot be reached, or rejects the credentials."""

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"cannot reach the apiserver at {server}: {reason}")


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived; the session unwinds and tears its clusters down."""
