"""rabbitsync: declarative data sync between microservices over RabbitMQ.

Subpackages, lower layers first (a lower one never imports a higher one):
``api`` (resource models) -> ``topology`` (pure broker topology) -> ``amqp`` (broker I/O)
-> ``operator`` (kopf controller); ``events`` (wire envelope) -> ``django`` (service library)
-> ``sidecar`` (consumer runtime).
"""

__version__ = "0.1.0"
