"""bijli: a prepaid smart electricity meter and its DLMS/COSEM stack, in pure Python.

The repository keeps one folder per layer (``dlms/``, ``firmware/``, ``hal/``,
``tools/``); installed, they are the sub-packages ``bijli.dlms``,
``bijli.firmware``, ``bijli.hal`` and ``bijli.tools`` of this one package, so
``pip install bijli`` adds a single top-level name to site-packages and cannot
collide with another distribution's ``tools`` or ``hal``. The mapping is
``[tool.setuptools] package-dir`` in pyproject.toml.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("bijli")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
