"""The rabbitsync test and dev harness: real control planes and a real RabbitMQ on loopback, no Docker.

``make dev-up``/``make dev-down`` and the pytest fixtures both go through ``environment``, so the
dev environment and the test environment are the same code.
"""
