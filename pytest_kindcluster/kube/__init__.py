"""Talking to a cluster's apiserver: kubeconfigs, readiness checks, namespaces, port-forwarding,
manifests.

Only this package catches the ``kubernetes`` client's exceptions.
"""
