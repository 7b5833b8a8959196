"""argparse's own words ("usage:", "options", "the following arguments are required"), in the
language Studio speaks.

argparse looks its strings up through the module-level names ``_`` and ``ngettext`` each time it
prints, so pointing those names at Studio's catalog translates them; the CLI does this once, for
its own process, before it builds the parser. The strings are listed here so that the catalog
extraction finds them; they must match argparse's text exactly (Python 3.11 and later).
"""

from __future__ import annotations

import argparse

from studio.core import i18n
from studio.core.i18n import N_

# What a person sees: headings, the help option, and the usage errors. argparse's messages about
# a wrongly built parser are for Studio's developers and stay in English.
ARGPARSE_STRINGS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("can't open '%(filename)s': %(error)s"),
)


def translate_argparse() -> None:
    argparse._ = i18n._  # type: ignore[attr-defined]
    argparse.ngettext = i18n.ngettext  # type: ignore[attr-defined]
