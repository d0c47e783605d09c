"""``python -m ncl_core …`` runs the same CLI as ``ncl-forensics <subcommand> …``."""

import sys

from ncl_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
