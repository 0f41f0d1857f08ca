"""``python scripts/compare.py <multirun dir>``: the same as ``lossbench compare <multirun dir>``."""

import sys

from lossbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["compare", *sys.argv[1:]]))
