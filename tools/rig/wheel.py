"""A reproducible pure-Python wheel of this project, built with the standard library only.

`bijli flash` must work offline on a machine whose venv has no ``wheel``
package and an older setuptools (so ``pip wheel --no-build-isolation`` fails
there with "invalid command 'bdist_wheel'"). This project is pure Python with
its metadata all in pyproject.toml, so writing the wheel directly is short:
the layout of PEP 427 / the binary distribution format spec, core metadata 2.1,
``entry_points.txt`` for ``[project.scripts]`` and ``[project.entry-points]``. Packages are mapped as setuptools
maps them (``[tool.setuptools] packages`` with ``package-dir``: the repository's
layer folders become ``bijli/dlms``, ``bijli/tools``, ...). Fixed timestamps and a sorted
member order make the same source give the same bytes, which keeps a second
`bijli flash` a no-op.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import re
import tomllib
import zipfile
from pathlib import Path

from bijli.tools.errors import UsageError

__all__ = ["WheelError", "build_wheel", "project_metadata"]

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class WheelError(UsageError):
    """The source tree cannot be made into a wheel (no or bad pyproject.toml)."""


def project_metadata(source: Path) -> dict:
    try:
        data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
        project = data["project"]
        name, version = project["name"], project["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise WheelError(f"{source}/pyproject.toml: cannot read name and version: {exc}") from exc
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version):
        raise WheelError(f"project name {name!r} / version {version!r} not usable in a wheel name")
    return data


def _packages(source: Path, setuptools: dict) -> list[tuple[str, Path]]:
    """(package, folder) pairs, as setuptools maps them: an explicit ``packages`` list with
    ``package-dir`` (the longest mapped prefix of a package names its folder), or
    ``packages.find`` ``include``/``exclude`` patterns over the source root."""
    listed = setuptools.get("packages")
    if isinstance(listed, list):
        mapping = setuptools.get("package-dir", {})
        found = []
        for pkg in listed:
            parts = pkg.split(".")
            for n in range(len(parts), -1, -1):
                prefix = ".".join(parts[:n])
                if prefix in mapping or n == 0:
                    base = source / mapping.get(prefix, "")
                    folder = base.joinpath(*parts[n:])
                    break
            if not (folder / "__init__.py").is_file():
                raise WheelError(f"package {pkg}: {folder} has no __init__.py")
            found.append((pkg, folder))
        return found
    find = setuptools.get("packages", {}).get("find", {})
    include, exclude = find.get("include", ["*"]), find.get("exclude", [])
    found = []

    def walk(directory: Path, prefix: str) -> None:
        for child in sorted(directory.iterdir()):
            if not child.is_dir() or "." in child.name or not (child / "__init__.py").is_file():
                continue
            pkg = prefix + child.name
            if any(fnmatch.fnmatchcase(pkg, p) for p in include) and \
                    not any(fnmatch.fnmatchcase(pkg, p) for p in exclude):
                found.append((pkg, child))
            walk(child, pkg + ".")

    walk(source, "")
    return found


def _metadata_text(project: dict, source: Path) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    lic = project.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            marker = f'extra == "{extra}"'
            lines.append(f"Requires-Dist: {dep}; {marker}" if ";" not in dep else
                         f"Requires-Dist: {dep} and {marker}")
    body = ""
    readme = project.get("readme")
    if isinstance(readme, str) and (source / readme).is_file():
        lines.append("Description-Content-Type: text/markdown" if readme.endswith(".md")
                     else "Description-Content-Type: text/plain")
        body = "\n" + (source / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(source: Path) -> tuple[str, bytes]:
    """The wheel's file name and bytes for the project in ``source`` (nothing written)."""
    source = Path(source)
    data = project_metadata(source)
    project = data["project"]
    packages = _packages(source, data.get("tool", {}).get("setuptools", {}))
    if not packages:
        raise WheelError(f"no packages found in {source}")
    dist = re.sub(r"[-_.]+", "_", project["name"]).lower()
    version = project["version"].replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"

    members: list[tuple[str, bytes]] = []
    for pkg, pkg_dir in packages:
        for path in sorted(pkg_dir.glob("*.py")):
            members.append((f"{pkg.replace('.', '/')}/{path.name}", path.read_bytes()))
    members.append((f"{dist_info}/METADATA", _metadata_text(project, source).encode()))
    members.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: bijli-flash\n"
                                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    text = "\n".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(items.items()))
                     for group, items in sorted(groups.items()) if items)
    if text:
        members.append((f"{dist_info}/entry_points.txt", text.encode()))
    top = sorted({p.split(".")[0] for p, _ in packages})
    members.append((f"{dist_info}/top_level.txt", ("\n".join(top) + "\n").encode()))
    for lic in ("LICENSE", "LICENSE.txt", "COPYING"):
        if (source / lic).is_file():
            members.append((f"{dist_info}/{lic}", (source / lic).read_bytes()))

    record = "".join(f"{name},{_record_hash(blob)},{len(blob)}\n" for name, blob in members)
    record += f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in members:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, blob)
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()
