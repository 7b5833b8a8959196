"""The ``studio`` command: with no arguments it opens the window, with a subcommand it is the CLI.

Options understood before any subcommand: ``--version``, and ``--lang LANG`` (for example
``zh_CN``), which sets the language of the window, the CLI and the processes they start.

This dispatcher sits outside ``studio.cli`` so the CLI package itself never imports Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from studio import __version__


def _take_language(args: list[str]) -> str | None:
    """Remove ``--lang X`` / ``--lang=X`` from the front options; return X."""
    for i, arg in enumerate(args):
        if arg == "--lang" and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if arg.startswith("--lang="):
            del args[i]
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            break  # the subcommand: its own options follow
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"studio {__version__}")
        return 0
    requested = _take_language(args)
    if not args or args[0] == "gui":
        from studio.gui.app import main as gui_main

        return gui_main(args[1:], language=requested)  # the window also weighs its Preferences
    from studio.cli.main import main as cli_main
    from studio.core import i18n

    i18n.set_language(i18n.choose_language(requested))
    return cli_main(args)


def window_main() -> int:
    """The ``studio-window`` entry point (a gui-script: Windows starts it without a console)."""
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
