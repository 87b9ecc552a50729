"""The ``rabbitsync`` command: status, topology and dead letters across clusters.

One module per subcommand (``status``, ``topology``, ``dlq``), the cluster access in ``kube`` (the
only module here that talks to Kubernetes), failures worded in ``failures``, output in ``output``;
``graph`` and ``render`` are the pure topology model and its drawings.
"""

from rabbitsync.cli.main import main

__all__ = ["main"]
