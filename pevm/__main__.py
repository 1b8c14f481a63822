"""``python -m pevm`` is the ``pevm`` command."""
import sys

from pevm.cli.main import main

sys.exit(main())
