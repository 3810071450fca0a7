"""Names shared by the cluster lifecycle, the node runtime and the offline image builder.

One small leaf module, so that neither side has to import the other to agree on them: the default
image references the builder produces and the lifecycle runs, and the label keys every container,
volume and network carries. The keys are public: the README tells users to filter ``docker ps``
by them, and kind's own keys make ``kind get clusters``, ``kind export logs`` and ``kind delete
cluster`` work on our clusters (kind: ``pkg/cluster/internal/providers/docker/constants.go``).
"""

from __future__ import annotations

from typing import Literal

# The node image `python -m pytest_kindcluster node-image build` makes; its tag is the Kubernetes
# version pinned in nodeimage/versions.py (a unit test keeps the two in step).
DEFAULT_NODE_IMAGE = "pytest-kindcluster/node:v1.37.2"

# Debian stable keeps haproxy's major.minor for the life of a release (trixie: 3.0), so the tag
# names the series and the exact package version is recorded in a label.
HAPROXY_SERIES = "3.0"
LOADBALANCER_IMAGE = f"pytest-kindcluster/haproxy:{HAPROXY_SERIES}"

# kind's own label keys.
CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
# Ours, for reaping clusters whose owner died and for telling runs apart.
OWNER_PID_LABEL = "dev.pytest-kindcluster.owner-pid"
OWNER_HOST_LABEL = "dev.pytest-kindcluster.owner-host"
OWNER_STARTED_LABEL = "dev.pytest-kindcluster.owner-started"
# The owner's PID namespace (inode of /proc/self/ns/pid) and boot (/proc/sys/kernel/random/boot_id):
# a pid means something only in the same namespace of the same boot (cluster/ownership.py).
OWNER_PIDNS_LABEL = "dev.pytest-kindcluster.owner-pidns"
OWNER_BOOT_LABEL = "dev.pytest-kindcluster.owner-boot"
RUN_ID_LABEL = "dev.pytest-kindcluster.run-id"
CREATED_LABEL = "dev.pytest-kindcluster.created"
# The retention asked for at creation. Labels cannot change once a container exists, so this
# records the intent: a cluster created to be kept is never reaped automatically.
RETAIN_LABEL = "dev.pytest-kindcluster.retain"
# What may become of a cluster after its session (``--kind-retain``); the label also records
# "reuse" for clusters made to be reused.
Retain = Literal["never", "on-failure", "always"]
RETAIN_CHOICES: tuple[Retain, ...] = ("never", "on-failure", "always")
# Put on a network created for one cluster alone (the value is the cluster's name); only such a
# network is removed with its cluster. The shared network never carries it, as kind never
# removes that network (kind: pkg/cluster/internal/providers/docker/network.go). Older versions
# labelled the shared network "dev.pytest-kindcluster.network" and removed it when idle; it is
# now created without that label, so they leave it alone too.
NETWORK_CLUSTER_LABEL = "dev.pytest-kindcluster.network-cluster"

# kind's shared network, and the apiserver's port inside a control-plane node.
DEFAULT_NETWORK = "kind"
API_SERVER_PORT = 6443

# Snapshots (cluster/snapshot.py): one image per node, tagged <repository>:<snapshot id>-<node>,
# and labelled with the inputs the snapshot was made from. The labels are the only record.
SNAPSHOT_REPOSITORY = "pytest-kindcluster/snapshot"
SNAPSHOT_LABEL = "dev.pytest-kindcluster.snapshot"  # value: the snapshot id
SNAPSHOT_FORMAT_LABEL = "dev.pytest-kindcluster.snapshot.format"
SNAPSHOT_CREATED_LABEL = "dev.pytest-kindcluster.snapshot.created"
# The capture's start in Unix seconds: it tells the layers of the capture from the node image's.
SNAPSHOT_CAPTURE_STARTED_LABEL = "dev.pytest-kindcluster.snapshot.capture-started"
SNAPSHOT_INPUTS_LABEL = "dev.pytest-kindcluster.snapshot.inputs"  # JSON: what the id digests
SNAPSHOT_NODE_LABEL = "dev.pytest-kindcluster.snapshot.node"  # JSON: this node at capture
SNAPSHOT_NODES_LABEL = "dev.pytest-kindcluster.snapshot.nodes"  # how many images make it whole
# Put on the network of a cluster booted from a snapshot (it has one of its own).
SNAPSHOT_NETWORK_LABEL = "dev.pytest-kindcluster.snapshot-network"
