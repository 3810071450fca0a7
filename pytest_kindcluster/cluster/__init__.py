"""The cluster lifecycle: create, use, keep or delete one cluster; clean up after crashed runs.

:class:`~.lifecycle.KindCluster` makes clusters of node containers, and
:class:`~.existing.ExistingCluster` runs the same API against a cluster made elsewhere. Both share
:class:`~.base.ClusterBase`.
"""
