"""Offline builder of kind-compatible node images (``python -m pytest_kindcluster node-image``)."""
