"""The translation catalogs, handled with Babel (pure Python: no system gettext).

    python -m config.catalogs update    # after changing strings: refresh every .po
    python -m config.catalogs compile   # .po → .mo (``make install`` runs it)
    python -m config.catalogs check     # list what lacks a translation; exit 1 if anything

Two domains, as Django reads them: ``django`` (templates and Python) and
``djangojs`` (the scripts, served by ``JavaScriptCatalog``).  Templates are
read the way ``makemessages`` reads them, through Django's ``templatize``,
then Babel's Python extractor; so ``{% translate %}``, ``{% blocktranslate %}``
(with ``count``, ``context`` and ``trimmed``) give the same msgids that Django
looks up.  English is the source language and has no catalog.
"""

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract, extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "locale"
# Every language but the source one (settings.LANGUAGES less English), with the
# plural rule Django's own catalogs use for it: CLDR's newer French rule has a
# third form for millions, which no string here needs.
PLURAL_FORMS = {
    "fr": "nplurals=2; plural=(n > 1);",
    "sv": "nplurals=2; plural=(n != 1);",
    "de": "nplurals=2; plural=(n != 1);",
}
LANGUAGES = tuple(PLURAL_FORMS)

PYTHON_KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext_lazy": (1, 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext_lazy": ((1, "c"), 2, 3),
}
JS_KEYWORDS = {"gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
COMMENT_TAGS = ["Translators:"]

APPS = ("agents", "tickets", "marketplace", "config", "outbox", "webhooks", "operations")
# The operations pages' scripts (floor.js, payroll.js) stay in English.
SCRIPTS = (
    "tickets/static/tickets/*.js",
    "static/js/agent-console.js",
    "static/js/humanline.js",
    "static/js/shift-board.js",
)


@dataclass(frozen=True)
class Found:
    msgid: str | tuple[str, str]
    context: str | None
    path: str
    line: int
    comments: list[str]


def extract_django_template(fileobj, keywords, comment_tags, options) -> Iterator:
    """A Babel extractor for Django templates: ``templatize``, then Python's."""
    from django.utils.translation import templatize

    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    python = templatize(source, origin=options.get("origin"))
    yield from extract_python(io.BytesIO(python.encode()), keywords, comment_tags, options)


def _sources(domain: str) -> Iterator[tuple[Path, object, dict]]:
    if domain == "djangojs":
        for pattern in SCRIPTS:
            for path in sorted(ROOT.glob(pattern)):
                yield path, "javascript", JS_KEYWORDS
        return
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and "tests" not in path.parts:
                yield path, "python", PYTHON_KEYWORDS
    for path in sorted((ROOT / "templates").rglob("*.html")):
        yield path, extract_django_template, PYTHON_KEYWORDS


def extract_messages(domain: str) -> list[Found]:
    """Every translatable string of the domain, where it is used."""
    found = []
    for path, method, keywords in _sources(domain):
        relative = path.relative_to(ROOT).as_posix()
        with path.open("rb") as fileobj:
            for line, msgid, comments, context in extract(
                method,
                fileobj,
                keywords=keywords,
                comment_tags=COMMENT_TAGS,
                options={"origin": relative},
                strip_comment_tags=True,
            ):
                found.append(Found(msgid, context, relative, line, comments))
    return found


def template_catalog(domain: str) -> Catalog:
    catalog = Catalog(project="Humanline", fuzzy=False)
    for m in extract_messages(domain):
        catalog.add(
            m.msgid, locations=[(m.path, m.line)], auto_comments=m.comments, context=m.context
        )
    return catalog


def po_path(language: str, domain: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(language: str, domain: str) -> Catalog:
    with po_path(language, domain).open("rb") as f:
        return read_po(f, locale=language, domain=domain)


def update() -> None:
    """Refresh every catalog from the code: new strings arrive untranslated
    (or fuzzy, from a close old one), strings no longer used are dropped."""
    for domain in ("django", "djangojs"):
        template = template_catalog(domain)
        for language in LANGUAGES:
            path = po_path(language, domain)
            if path.exists():
                catalog = read_catalog(language, domain)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                catalog = Catalog(
                    locale=language,
                    domain=domain,
                    project="Humanline",
                    version="1",
                    copyright_holder="Humanline contributors",
                    msgid_bugs_address="",
                    fuzzy=False,
                )
                catalog.header_comment = (
                    f"# {catalog.locale.english_name} translations of Humanline ({domain}).\n"
                    "# This file is distributed under the same license as Humanline.\n#"
                )
            catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS[language])]
            catalog.update(template, update_header_comment=False, update_creation_date=False)
            with path.open("wb") as f:
                write_po(f, catalog, width=100, ignore_obsolete=True, sort_output=False)


def compile_all() -> None:
    """Each .po to its .mo beside it; fuzzy entries are left out, as gettext does."""
    for path in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        mo = path.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= path.stat().st_mtime:
            continue
        with path.open("rb") as f:
            catalog = read_po(f, locale=path.parent.parent.name, domain=path.stem)
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)


def problems(read=read_catalog) -> list[str]:
    """What keeps the catalogs from being complete: a string used in the code
    that a catalog lacks, leaves empty or marks fuzzy, or a translation whose
    placeholders do not match its msgid's.  ``read(language, domain)`` gives a
    catalog (the repository's, unless a test hands in another)."""
    found = []
    for domain in ("django", "djangojs"):
        template = template_catalog(domain)
        for language in LANGUAGES:
            catalog = read(language, domain)
            for wanted in template:
                if not wanted.id:
                    continue
                where = ", ".join(f"{p}:{n}" for p, n in wanted.locations[:2])
                label = f"{language}/{domain}.po: {wanted.id!r} ({where})"
                have = catalog.get(wanted.id, context=wanted.context)
                if have is None:
                    found.append(f"{label} is missing: run `python -m config.catalogs update`")
                elif have.fuzzy:
                    found.append(f"{label} is fuzzy")
                elif not all(have.string) if isinstance(have.string, tuple) else not have.string:
                    found.append(f"{label} has no translation")
            for message, errors in catalog.check():
                for error in errors:
                    found.append(f"{language}/{domain}.po: {message.id!r}: {error}")
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command in ("update", "check"):
        import django

        django.setup()  # templatize reads the template engine's settings
    if command == "update":
        update()
        return 0
    if command == "compile":
        compile_all()
        return 0
    if command == "check":
        found = problems()
        print("\n".join(found) or "Every string has a translation in fr, sv and de.")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.exit(main(sys.argv))
