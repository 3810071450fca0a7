"""The control-plane load balancer of HA clusters: Debian's haproxy, configured by us.

kind fronts several control planes with envoy pulled from a registry. Machines without a
registry cannot pull it, so the node-image tooling builds :data:`LOADBALANCER_IMAGE` from Debian's
haproxy package (``nodeimage/haproxy_image.py``) and this module renders its configuration.

haproxy runs as PID 1 in master-worker mode: writing a new :data:`CONFIG_PATH` and sending the
master ``SIGUSR2`` (:data:`RELOAD_ARGV`) reloads it without dropping the listener. Backends are
named by container name and resolved through Docker's embedded DNS, so a restarted control plane
with a new address is found again, and a stopped one (gone from DNS) is taken out of rotation.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_kindcluster.contract import API_SERVER_PORT

HAPROXY_VERSION_LABEL = "io.pytest-kindcluster.haproxy-version"
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
ROLE = "external-load-balancer"
# haproxy's master re-reads the configuration on SIGUSR2; busybox in the image provides kill.
RELOAD_ARGV = ("kill", "-USR2", "1")
ENTRYPOINT = ("/usr/sbin/haproxy", "-W", "-db", "-f", CONFIG_PATH)

_HEAD = """\
global
  log stdout format raw local0 notice
  maxconn 4096

defaults
  log global
  mode tcp
  option dontlognull
  timeout connect 5s
  # Watches and port-forward streams stay open for a long time without traffic.
  timeout client 1h
  timeout server 1h
  timeout check 2s

resolvers docker
  # Docker's embedded DNS (from the container's resolv.conf) knows every node by its name.
  parse-resolv-conf
  # A stopped container leaves Docker's DNS at once; forget its address quickly too.
  hold valid 2s
  hold nx 1s
  hold obsolete 1s

frontend control-plane
  bind *:{port}
  default_backend kube-apiservers

backend kube-apiservers
  # /readyz turns 200 only when the apiserver (and its etcd) can serve; anonymous access to it
  # is allowed by Kubernetes' default RBAC (system:public-info-viewer).
  option httpchk GET /readyz
  http-check expect status 200
  default-server check check-ssl verify none inter 1s fall 2 rise 1 resolvers docker \
resolve-prefer ipv4 init-addr none
"""


def render_config(backends: Sequence[str], port: int = API_SERVER_PORT) -> str:
    """haproxy.cfg for control planes reachable as ``<name>:6443`` on the cluster network.

    With no backends the frontend still listens but closes every connection: the image ships
    that configuration until the first reload.
    """
    for name in backends:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"invalid backend name {name!r}")
    lines = [_HEAD.replace("{port}", str(port))]
    lines += [f"  server {name} {name}:{port}\n" for name in backends]
    return "".join(lines)
