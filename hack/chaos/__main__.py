"""``python -m chaos [--events N] [--soak] [--faults k1,k2] [--seed S] [--keep]``: for ``make chaos``."""

import sys

from chaos.run import main

if __name__ == "__main__":
    sys.exit(main())
