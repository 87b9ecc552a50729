#!/usr/bin/env python
"""Django's command line for the restaurant-menu service (``runserver``, ``migrate``, ``rabbitsync_sidecar``)."""

import os
import sys
from pathlib import Path


def main() -> None:
    # services/common, the helpers the example services share, sits next to this project.
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "restaurant_menu.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
