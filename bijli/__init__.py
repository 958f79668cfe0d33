"""bijli: a prepaid smart electricity meter and its DLMS/COSEM stack, in pure Python.

The repository keeps one folder per layer (``dlms/``, ``firmware/``, ``hal/``,
``tools/``); installed, they are the sub-packages ``bijli.dlms``,
``bijli.firmware``, ``bijli.hal`` and ``bijli.tools`` of this one package, so
``pip install bijli`` adds a single top-level name to site-packages and cannot
collide with another distribution's ``tools`` or ``hal``. The mapping is
``[tool.setuptools] package-dir`` in pyproject.toml.

``__version__`` is looked up on first use (PEP 562 module ``__getattr__``):
``importlib.metadata`` costs tens of milliseconds, and every ``bijli`` command
imports this package before it does anything.
"""


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'bijli' has no attribute {name!r}")
    from importlib import metadata

    try:
        version = metadata.version("bijli")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        version = "0+unknown"
    globals()["__version__"] = version
    return version
