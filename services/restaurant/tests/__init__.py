"""The service's own tests: ``python manage.py test tests`` (no broker: rabbitsync.django.testing)."""
