"""The kopf controller: SyncSubscription and SyncBroker reconciled onto the shared broker.

The only layer that talks to the Kubernetes API (through kopf and ``kube``); handlers are thin and
call plain functions in ``reconcile``, which build on the pure ``topology`` and the ``amqp`` I/O layer.
"""
