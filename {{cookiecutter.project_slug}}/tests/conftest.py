"""The tests import the daemon from src/. Here rather than pytest's `pythonpath` setting,
which pytest 7 added: Debian 11's python3-pytest is 6.0."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
