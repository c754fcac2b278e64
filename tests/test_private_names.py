"""No private name of another package is used, so an upgrade cannot break us silently.

The project's code is read (not imported) and three things are looked for:

- an attribute whose name starts with one underscore, where the project itself
  defines no such name (``response._handler_class``, ``layer._group_key``);
- ``from package import _name`` from another package;
- a class of the project defining a method with such a name that a base class
  from another package has: an override of its private method (``_close``).

A few names start with an underscore and are documented public API all the
same; they are listed in ``DOCUMENTED`` with where.  Every other use must be
in ``ALLOWED`` with its reason, and an entry no longer used fails too, so the
list only shrinks.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "node_modules", "var", ".git", "migrations"}

# Names with a leading underscore that their package documents as public.
DOCUMENTED = {
    "_meta": "Django: the Model _meta API (ref/models/meta)",
    "_state": "Django: Model._state, in the model instance reference (ref/models/instances)",
    "_db": "Django: Manager._db, in the documented custom user manager (topics/auth/customizing)",
    "_replace": "Python: namedtuple._replace (library/collections)",
}

# (file, name) -> why it is still used.  Empty: nothing is.
ALLOWED: dict[tuple[str, str], str] = {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def project_files() -> list[Path]:
    return sorted(
        path for path in ROOT.rglob("*.py") if not SKIPPED & set(path.relative_to(ROOT).parts)
    )


def _top_level_packages() -> set[str]:
    return {path.parent.name for path in ROOT.glob("*/__init__.py")} | {
        path.stem for path in ROOT.glob("*.py")
    }


def defined_names(trees: list[ast.AST]) -> set[str]:
    """Every name the project defines: functions, classes, variables, arguments,
    and attributes it sets on ``self`` or ``cls``."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg | ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
    return names


def _imported(tree: ast.AST) -> dict[str, tuple[str, str | None]]:
    """What each imported name of a module stands for: (module, attribute or None)."""
    found: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    found[top] = (top, None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _resolve(base: ast.expr, imported: dict, ours: set[str]):
    """The class a base expression names, when it comes from another package."""
    parts: list[str] = []
    while isinstance(base, ast.Attribute):
        parts.insert(0, base.attr)
        base = base.value
    if not isinstance(base, ast.Name) or base.id not in imported:
        return None
    module, attribute = imported[base.id]
    if module.split(".")[0] in ours:
        return None
    try:
        target = importlib.import_module(module)
        if attribute is not None:
            try:
                target = getattr(target, attribute)
            except AttributeError:
                target = importlib.import_module(f"{module}.{attribute}")
        for part in parts:
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return target if isinstance(target, type) else None


def private_uses(source: str, *, ours: set[str], defined: set[str]) -> set[str]:
    """The private names of other packages that ``source`` uses."""
    tree = ast.parse(source)
    imported = _imported(tree)
    uses: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr not in defined and node.attr not in DOCUMENTED:
                uses.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] not in ours:
                uses |= {f"import {a.name}" for a in node.names if _private(a.name)}
        elif isinstance(node, ast.ClassDef):
            bases = [_resolve(base, imported, ours) for base in node.bases]
            for item in node.body:
                if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if _private(item.name) and any(
                    base is not None and hasattr(base, item.name) for base in bases
                ):
                    uses.add(f"override {item.name}")
    return uses


def scan() -> dict[tuple[str, str], None]:
    files = project_files()
    sources = {path: path.read_text(encoding="utf-8") for path in files}
    ours = _top_level_packages()
    trees = [ast.parse(text) for text in sources.values()]
    defined = defined_names(trees)
    found = {}
    for path, text in sources.items():
        for name in private_uses(text, ours=ours, defined=defined):
            found[(str(path.relative_to(ROOT)), name)] = None
    return found


def test_no_private_name_of_another_package_is_used_unless_listed():
    found = scan()
    unlisted = sorted(set(found) - set(ALLOWED))
    assert unlisted == [], (
        "private names of other packages (use their public API, or list the use in"
        f" ALLOWED with its reason): {unlisted}"
    )


def test_every_listed_use_is_still_there():
    stale = sorted(set(ALLOWED) - set(scan()))
    assert stale == [], f"no longer used: remove from ALLOWED: {stale}"


def test_the_scan_finds_each_kind_of_use():
    source = (
        "from redis._parsers import _HiredisParser\n"
        "from django.db.backends.postgresql import base\n"
        "class Wrapper(base.DatabaseWrapper):\n"
        "    def _close(self):\n"
        "        pass\n"
        "    def _our_own(self):\n"
        "        pass\n"
        "def push(layer, model):\n"
        "    return layer._group_key('g'), model._meta, layer._our_own\n"
    )
    uses = private_uses(source, ours={"config"}, defined={"_our_own", "_close"})
    assert uses == {"import _HiredisParser", "override _close", "_group_key"}
