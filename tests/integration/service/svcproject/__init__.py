"""A tiny Django project for the service-side integration tests: real settings, real SQLite file."""
