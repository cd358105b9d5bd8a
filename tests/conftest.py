"""Settings for every tier of the template's tests."""

import os
import sys
from pathlib import Path

# The venv's tools (ruff, ansible-playbook, cookiecutter) for the generated projects'
# Makefiles and for require_tool, however pytest was started.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
