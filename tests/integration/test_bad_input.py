"""Bad input against the real engine: each case checks the message, the time it took, and that
nothing is left behind. Also: no credential ever reaches the output or the exported logs.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster import ConfigError, KindCluster
from pytest_kindcluster.runtime.docker.client import describe_endpoint
from tests import support
from tests.support import error_section, unique

pytestmark = pytest.mark.integration

NOTHING: dict[str, list[str]] = {"containers": [], "volumes": []}


def run_session(pytester: pytest.Pytester, session: str, *args: str) -> pytest.RunResult:
    """As support.run_session, with every fixture's duration reported (see fixture_seconds)."""
    return support.run_session(pytester, session, "--durations=0", "--durations-min=0", *args)


def short_error(result: pytest.RunResult, most: int) -> list[str]:
    """The test's error section: at most ``most`` lines, none of them a traceback."""
    section = error_section(result.stdout.str(), "test_cluster_is_usable")
    print(f"error section: {len(section)} lines:", *section, sep="\n")  # the README quotes it
    assert len(section) <= most, "\n".join(section)
    assert "Traceback" not in result.stdout.str()
    assert "The above exception was the direct cause" not in result.stdout.str()
    return section


def setup_seconds(result: pytest.RunResult) -> float:
    """How long the cluster fixture took to fail, from pytest's own --durations report."""
    match = re.search(r"^([\d.]+)s setup\s", result.stdout.str(), re.M)
    assert match, result.stdout.str()
    return float(match.group(1))


@pytest.mark.parametrize(
    ("docker_host", "named"),
    [
        ("unix:///nonexistent/docker.sock", "DOCKER_HOST=unix:///nonexistent/docker.sock"),
        # A routable-looking address nothing answers on: the connect itself has to time out.
        ("tcp://10.255.255.1:2375", "DOCKER_HOST=tcp://10.255.255.1:2375"),
    ],
    ids=["missing-socket", "black-hole"],
)
def test_unreachable_docker_fails_within_five_seconds_naming_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    leftovers: Any,
    docker_host: str,
    named: str,
) -> None:
    name = unique("it-nodocker")
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    result = run_session(pytester, "needs_cluster.py", f"--kind-name={name}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*RuntimeUnavailable: cannot reach a Docker engine at {named}*"])
    # The header, the message with its fix, and where the traceback is.
    assert "Start dockerd" in "\n".join(short_error(result, 3))
    assert setup_seconds(result) < 5
    monkeypatch.undo()
    assert leftovers(name) == NOTHING


def test_the_default_socket_is_named_when_docker_host_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert describe_endpoint() == "the socket unix:///var/run/docker.sock (DOCKER_HOST is not set)"


def test_an_image_that_is_neither_local_nor_pullable_fails_at_once(
    pytester: pytest.Pytester, leftovers: Any
) -> None:
    name = unique("it-nopull")
    image = "registry.invalid/kindest/node:v0.0.0"
    result = run_session(
        pytester, "needs_cluster.py", f"--kind-name={name}", f"--kind-image={image}"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*ImageError: image(s) {image} not in the Docker engine and not pullable; build the "
            "node image with `python -m pytest_kindcluster node-image build`*",
            f"*cannot pull {image}: *registry.invalid*",
        ]
    )
    short_error(result, 4)
    assert setup_seconds(result) < 5
    assert leftovers(name) == NOTHING


def test_an_image_that_is_not_a_kind_node_image_is_refused_in_seconds(
    pytester: pytest.Pytester, leftovers: Any
) -> None:
    name = unique("it-busybox")
    result = run_session(
        pytester, "needs_cluster.py", f"--kind-name={name}", "--kind-image=busybox:1.36"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ImageError: busybox:1.36 is not a kind node image: it has no /kind/version "
            "(checked before running it, in a container that was never started); build the node "
            "image with `python -m pytest_kindcluster node-image build`*"
        ]
    )
    assert setup_seconds(result) < 5  # refused before any node container exists
    assert leftovers(name) == NOTHING


@pytest.mark.parametrize("bad", ["Bad_Name", "-leading-dash", "x" * 50])
def test_an_invalid_cluster_name_is_a_usage_error(
    pytester: pytest.Pytester, leftovers: Any, bad: str
) -> None:
    result = run_session(pytester, "needs_cluster.py", f"--kind-name={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--kind-name='{bad}': invalid cluster name*lowercase*"])
    with pytest.raises(ConfigError, match="invalid cluster name"):
        KindCluster(bad)
    assert leftovers(bad) == NOTHING


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other process is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_host_port_already_in_use_is_named_and_nothing_is_left(
    pytester: pytest.Pytester, node_image: str, leftovers: Any, taken_port: int, tmp_path: Path
) -> None:
    name = unique("it-port")
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
        f"  extraPortMappings:\n  - containerPort: 30080\n    hostPort: {taken_port}\n"
    )
    result = run_session(
        pytester, "needs_cluster.py", f"--kind-name={name}", f"--kind-config={config}"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*run node '{name}-control-plane'*127.0.0.1:{taken_port}*address already in use*"
            "a host port this cluster asks for is taken by another process*"
        ]
    )
    short_error(result, 4)
    assert setup_seconds(result) < 30
    assert leftovers(name) == NOTHING


def test_a_node_that_dies_fails_the_later_tests_clearly_and_teardown_completes(
    pytester: pytest.Pytester, node_image: str, leftovers: Any, tmp_path: Path
) -> None:
    name = unique("it-dies")
    logs = tmp_path / "logs"
    result = run_session(pytester, "node_dies.py", f"--kind-name={name}", f"--kind-logs-dir={logs}")
    result.assert_outcomes(passed=2, errors=2)
    out = result.stdout.str()
    lost = f"cluster '{name}' lost node container(s) during the session:"
    assert out.count(lost) >= 2  # each later test says so
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_3_after_the_death*",
            f"*{name}-control-plane: exited (exit code 137*",
            f"*the tests after this point cannot use it; logs exported to {logs / name}",
            f"kind {name}: node(s) stopped; logs exported to {logs / name}",
            f"kind {name}: deleted",
        ]
    )
    node_logs = logs / name / f"{name}-control-plane"
    assert "Multi-User System" in (node_logs / "serial.log").read_text()
    assert json.loads((node_logs / "inspect.json").read_text())["State"]["ExitCode"] == 137
    assert leftovers(name) == NOTHING


def test_a_readiness_timeout_exports_logs_and_names_the_path(
    pytester: pytest.Pytester, node_image: str, leftovers: Any, tmp_path: Path
) -> None:
    name = unique("it-slow")
    logs = tmp_path / "logs"
    result = run_session(
        pytester,
        "needs_cluster.py",
        f"--kind-name={name}",
        "--kind-timeout=1",
        f"--kind-logs-dir={logs}",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ReadinessTimeout: cluster not ready after 1s; last observed state:*",
            f"*logs exported to {logs / name}*",
            f"kind {name}: creation failed; logs exported to {logs / name}",
        ]
    )
    # The header, the message (a line per readiness check), the fix and the logs' path.
    assert "give it more time: --kind-timeout" in "\n".join(short_error(result, 10))
    node_logs = logs / name / f"{name}-control-plane"
    assert "kubelet" in (node_logs / "kubelet.log").read_text()
    assert (logs / name / "pods.txt").read_text().strip()
    assert leftovers(name) == NOTHING


def test_no_token_or_key_in_output_or_exported_logs(
    pytester: pytest.Pytester,
    node_image: str,
    leftovers: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("it-secrets")
    logs = tmp_path / "logs"
    record = tmp_path / "secrets.json"
    monkeypatch.setenv("KIND_SECRETS_FILE", str(record))
    # DEBUG logs to the terminal: every command run in the nodes, with its output.
    result = run_session(
        pytester,
        "secrets_session.py",
        f"--kind-name={name}",
        f"--kind-logs-dir={logs}",
        "--log-cli-level=DEBUG",
        "-rA",
    )
    result.assert_outcomes(passed=1, failed=1)
    found = json.loads(record.read_text())
    key_pem = base64.b64decode(found["client_key_data"]).decode()
    key_body = key_pem.splitlines()[1]  # a line of the key's base64 body
    exported = [p for p in logs.rglob("*") if p.is_file()]
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    texts |= {str(p): p.read_bytes().decode(errors="replace") for p in exported}
    # Not vacuous: the commands that handle the secrets were logged, and logs were exported.
    assert "cat /kind/kubeadm.conf -> exit 0" in texts["stdout"]
    assert "cat /etc/kubernetes/admin.conf -> exit 0" in texts["stdout"]
    assert "<redacted>" in texts[str(logs / name / f"{name}-control-plane" / "kubeadm.conf")]
    assert len(exported) > 20
    for where, text in texts.items():
        assert found["token"] not in text, where
        assert found["client_key_data"] not in text, where
        assert key_body not in text, where
        assert "PRIVATE KEY-----\nMII" not in text, where
    # Loopback only, and a kubeconfig only the user can read.
    assert {host for host, _ in found["ports"].values()} == {"127.0.0.1"}
    assert found["kubeconfig_mode"] == 0o600
    assert found["kubeconfig_dir_mode"] == 0o700
    assert leftovers(name) == NOTHING
