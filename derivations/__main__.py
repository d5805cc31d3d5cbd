"""``python -m tracegrad``: the command line."""
import sys

from tracegrad.cli import main

sys.exit(main())
