"""The Docker Engine, through the ``docker`` SDK: the only code of the package that imports it.

``runtime.py`` is the :class:`~pytest_kindcluster.runtime.base.NodeRuntime`; the SDK's exceptions
are translated once, in ``errors.py``. ``images.py`` serves the offline image builder.
"""
