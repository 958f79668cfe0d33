"""Each concept has one name in one place: no class or enum name is defined in two of
our packages (a package being any folder with ``__init__.py`` under dlms, firmware, hal
and tools, so dlms.cosem and dlms.link count apart).

The scan reads the source with ast (classes at any depth, enums included since an
enum is a class). The few names allowed twice are listed below, each with the reason;
a name that is allowed but no longer defined twice fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("dlms", "firmware", "hal", "tools")

#: names defined in two packages on purpose, each with the reason
ALLOWED = {
    # both are the standard's own names: the A-XDR Data CHOICE (IEC 62056-5-3, dlms.axdr)
    # and interface class 1 "Data" (IEC 62056-6-2, dlms.cosem.data)
    "Data": {"dlms", "dlms.cosem"},
}


def _package(path: Path, root: Path) -> str:
    folder = path.parent
    parts = []
    while folder != root:
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))


def defined_in(root: Path = ROOT, layers: tuple[str, ...] = LAYERS) -> dict[str, set[str]]:
    """Every class name, with the packages that define it."""
    where: dict[str, set[str]] = defaultdict(set)
    for layer in layers:
        for path in (root / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    where[node.name].add(_package(path, root))
    return where


def test_no_class_or_enum_name_is_defined_in_two_packages():
    twice = {name: packages for name, packages in defined_in().items() if len(packages) > 1}
    unexplained = {name: sorted(p) for name, p in twice.items() if name not in ALLOWED or p - ALLOWED[name]}
    assert unexplained == {}


def test_the_allowed_list_names_only_real_duplicates():
    where = defined_in()
    stale = sorted(name for name in ALLOWED if len(where.get(name, ())) < 2)
    assert stale == []


def test_the_scan_sees_a_duplicate(tmp_path):
    """The scan itself: two packages defining one name are found, nested classes included."""
    for pkg, body in (("a", "class Same:\n    pass\n"), ("b", "def f():\n    class Same:\n        pass\n")):
        (tmp_path / pkg / "sub").mkdir(parents=True)
        (tmp_path / pkg / "__init__.py").write_text("")
        (tmp_path / pkg / "sub" / "m.py").write_text(body)
    assert defined_in(tmp_path, ("a", "b"))["Same"] == {"a.sub", "b.sub"}
