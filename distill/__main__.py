import sys

from distill.cli import entry

sys.exit(entry())
