"""The ``studio`` command: with no arguments it opens the window, with a subcommand it is the CLI.

This dispatcher sits outside ``studio.cli`` so the CLI package itself never imports Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] == "gui":
        from studio.gui.app import main as gui_main

        return gui_main(args[1:])
    from studio.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
