"""Entry point: `python3 -m {{ cookiecutter.package_name }}` and the installed launcher."""

import sys

from .daemon import main

sys.exit(main())
