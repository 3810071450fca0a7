"""Deploy an app behind a Service and reach it from another pod by its DNS name.

Run with ``pytest examples/``: the plugin creates a fresh cluster, and deletes it afterwards.
"""

from __future__ import annotations

from pytest_kindcluster import KindCluster

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        imagePullPolicy: IfNotPresent
        command:
        - sh
        - -c
        - >-
          mkdir -p /www && echo hello from $(hostname) > /www/index.html
          && exec httpd -f -p 8080 -h /www
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

CLIENT = """
apiVersion: batch/v1
kind: Job
metadata: {{name: client, namespace: {ns}}}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: client
        image: busybox:1.36
        imagePullPolicy: IfNotPresent
        command: ["wget", "-q", "-O", "-", "http://web.{ns}.svc.cluster.local"]
"""


def test_pod_reaches_the_service_by_dns(kind_cluster: KindCluster, kind_namespace: str) -> None:
    # A no-op when the node image already holds busybox; otherwise copied from the host.
    kind_cluster.load_docker_image("busybox:1.36")
    ns = kind_namespace

    kind_cluster.apply(APP.format(ns=ns))
    kind_cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s")

    kind_cluster.apply(CLIENT.format(ns=ns))
    kind_cluster.kubectl(
        "wait", "--for=condition=complete", "job/client", "-n", ns, "--timeout=120s"
    )

    assert kind_cluster.kubectl("logs", "job/client", "-n", ns).startswith("hello from web-")
