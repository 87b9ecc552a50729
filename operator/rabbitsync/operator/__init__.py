"""The kopf controller: SyncSubscription and SyncBroker reconciled onto the shared broker.

The only layer that talks to the Kubernetes API, and only through the ``kube`` port (kopf's indexes
and single GETs in production, an in-memory fake in tests). Handlers are thin translations of kopf's
kwargs; ``reconcile``, ``cleanup`` and ``brokers`` are plain functions of the object, the port and the
broker, which build on the pure ``topology`` and the ``amqp`` I/O layer.
"""
