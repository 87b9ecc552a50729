"""What the three example services share, kept small: settings defaults, JSON views, replication.

Not a framework: each service under ``services/`` is a normal Django project that imports these
few helpers (its ``manage.py`` puts ``services/`` on ``sys.path``; the image sets ``PYTHONPATH``).
"""
