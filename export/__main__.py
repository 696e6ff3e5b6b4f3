import sys

from export.cli import entry

sys.exit(entry())
