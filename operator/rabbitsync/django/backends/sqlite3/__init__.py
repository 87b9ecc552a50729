"""SQLite for Django 4.2 and 5.0, with the two options Django 5.1 added (see :mod:`.base`)."""
