"""The translation catalogs: extract the strings, update a language, start a new one, check them.

    python scripts/i18n.py extract            # resources/translations/studio.pot from the code
    python scripts/i18n.py update             # merge the template into every <lang>.po
    python scripts/i18n.py init fr            # start resources/translations/fr.po
    python scripts/i18n.py check              # every string translated, placeholders intact

Strings are found by Babel in ``studio/`` where they are wrapped in ``_()``, ``N_()`` or
``ngettext()`` (see ``studio/core/i18n.py``). See docs/translating.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "resources" / "translations"
TEMPLATE = FOLDER / "studio.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def extract() -> Catalog:
    catalog = Catalog(project="Studio", msgid_bugs_address="", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT / "studio"), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("Translators:",),
    ):
        catalog.add(message, locations=[(f"studio/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, sort_by_file=True, omit_header=False)


def languages() -> list[Path]:
    return sorted(FOLDER.glob("*.po"))


def update(template: Catalog) -> None:
    for po in languages():
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.stem)
        catalog.update(template, no_fuzzy_matching=True)
        write(catalog, po)
        print(f"{po.name}: {len(catalog)} strings")


def problems(template: Catalog, po: Path) -> list[str]:
    """Strings of the template missing from ``po`` or translated with other placeholders."""
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.stem)
    found = []
    for message in template:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        entry = catalog.get(message.id)
        strings = entry.string if entry is not None else None
        texts = [strings] if isinstance(strings, str) else list(strings or [])
        if entry is None or not texts or not all(texts) or entry.fuzzy:
            found.append(f"untranslated: {key!r}")
            continue
        wanted = sorted(PLACEHOLDER.findall(key))
        for text in texts:
            if sorted(PLACEHOLDER.findall(text)) != wanted:
                found.append(f"placeholders differ: {key!r} -> {text!r}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["extract", "update", "init", "check"])
    parser.add_argument("language", nargs="?")
    args = parser.parse_args()
    template = extract()
    if args.action == "extract":
        write(template, TEMPLATE)
        print(f"{TEMPLATE.relative_to(ROOT)}: {len(template)} strings")
    elif args.action == "update":
        write(template, TEMPLATE)
        update(template)
    elif args.action == "init":
        if not args.language:
            parser.error("name the language, e.g. fr or pt_BR")
        po = FOLDER / f"{args.language}.po"
        if po.exists():
            parser.error(f"{po} already exists; use update")
        catalog = Catalog(locale=args.language, project="Studio", charset="utf-8")
        for message in template:
            if message.id:
                catalog.add(message.id, locations=message.locations, auto_comments=message.auto_comments)
        write(catalog, po)
        print(f"{po.relative_to(ROOT)}: {len(catalog)} strings to translate")
    else:
        bad = {po.name: problems(template, po) for po in languages()}
        for name, found in bad.items():
            for line in found[:50]:
                print(f"{name}: {line}")
            print(f"{name}: {len(found)} problem(s)")
        return 1 if any(bad.values()) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
