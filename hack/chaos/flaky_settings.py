"""A service's own settings (``CHAOS_BASE_SETTINGS``) plus the ``chaos.flaky`` app: see ``chaos.flaky``."""

import os
from importlib import import_module

_base = import_module(os.environ["CHAOS_BASE_SETTINGS"])
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})
INSTALLED_APPS = [*_base.INSTALLED_APPS, "chaos.flaky.FlakyHandlers"]
