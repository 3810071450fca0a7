# mypy: ignore-errors
# (pytest-kind suites are untyped; this one stays as users write it)
"""A test suite written the way pytest-kind's README and examples use it, run unchanged.

Only what pytest-kind documents: the ``kind_cluster`` fixture, ``load_docker_image``,
``kubectl("apply", "-f", <host path>)``, ``kubectl("rollout", "status", ...)``, ``port_forward``
(with pytest-kind's ``-n`` arguments), ``kubeconfig_path`` and ``kubectl_path`` used by a
subprocess, and ``--kind-image`` on the command line. Run by test_pytest_kind_users.py, from a
directory holding ``deployment.yaml``.
"""

import socket
import subprocess

import requests


def test_myapp(kind_cluster):
    kind_cluster.load_docker_image("pytest-kind-style/myapp:dev")
    kind_cluster.kubectl("apply", "-f", "deployment.yaml")
    kind_cluster.kubectl("rollout", "status", "deployment/myapp", "--timeout=120s")

    with kind_cluster.port_forward("service/myapp", 80) as port:
        r = requests.get(f"http://localhost:{port}/hello/world")
        r.raise_for_status()
        assert r.text == "Hello world!"


def test_kubectl_version(kind_cluster):
    assert "v1.37" in kind_cluster.kubectl("version")


def test_port_forward_with_kubectl_style_namespace_args(kind_cluster):
    kind_cluster.load_docker_image("pytest-kind-style/myapp:dev")
    kind_cluster.kubectl("apply", "-f", "deployment.yaml")
    kind_cluster.kubectl("rollout", "status", "deployment/myapp", "--timeout=120s")
    with kind_cluster.port_forward("service/myapp", 80, "-n", "default") as port:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        finally:
            s.close()


def test_subprocess_kubectl_with_the_kubeconfig(kind_cluster):
    out = subprocess.check_output(
        [str(kind_cluster.kubectl_path), "get", "nodes", "-o", "name"],
        env={"KUBECONFIG": str(kind_cluster.kubeconfig_path)},
        encoding="utf-8",
    )
    assert out == f"node/{kind_cluster.name}-control-plane\n"


def test_kubectl_with_input(kind_cluster):
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-input\ndata:\n  a: b\n"
    kind_cluster.kubectl("apply", "-f", "-", input=manifest)
    assert kind_cluster.kubectl("get", "configmap", "from-input", "-o", "name").strip() == (
        "configmap/from-input"
    )
