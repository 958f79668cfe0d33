"""What runs before `bijli meter` starts the firmware: choose the image to run, and run it.

The meter's builds live side by side: the base build (the installed package,
``/opt/bijli/venv`` on the rig) and the images a head-end sent over DLMS image
transfer, installed under ``STATE/images/NAME/`` by :mod:`firmware.upgrade.store`.
At every start :func:`prepare` asks ``firmware.upgrade.boot.plan_start`` which one
to run: the active image, or an activated (pending) image that still has start
attempts left, or -- when those are spent without the meter coming up healthy
-- the previous image again, with the activation recorded as failed. If that is
not the build this process already runs, the process re-executes itself as
``python -P -m bijli.tools.cli meter ARGS`` with the chosen build first on
``PYTHONPATH`` (a pure-Python build needs nothing else; ``-P`` keeps the
current directory off ``sys.path`` so a source checkout cannot shadow it).
Re-executing keeps the process id, so systemd's ``Type=notify`` unit and its
watchdog follow the meter across images, and a crash simply ends the process:
the next start (systemd's ``Restart=``, or a person) counts it.

The running meter calls :func:`mark_healthy` once it has served for
``[upgrade] healthy_after_s``; that promotes the pending image to active.
:func:`restart` is how the meter hands over to an image whose activation time
has come.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from bijli.firmware.errors import ConfigError
from bijli.firmware.upgrade.boot import plan_start, promote
from bijli.firmware.upgrade.config import UpgradeConfig
from bijli.firmware.upgrade.record import images_dir

ENV_IMAGE = "BIJLI_IMAGE"  # set by the launcher: the image this process runs ("" = the base build)
ENV_BASE = "BIJLI_BASE_ROOT"  # where the base build's packages are
ENV_PATH = "BIJLI_ORIGINAL_PYTHONPATH"  # PYTHONPATH as the first start found it


def running_image(environ=None) -> str | None:
    """The installed image this process runs from (None: the base build)."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_IMAGE) or None


def upgrade_config(config_path: "str | Path | None") -> UpgradeConfig:
    """The ``[upgrade]`` table of the meter's config file (defaults without one)."""
    if config_path is None:
        return UpgradeConfig()
    try:
        data = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(config_path), f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(config_path), f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(str(config_path), "not valid TOML: values nested too deep") from None
    return UpgradeConfig.from_table(data.get("upgrade", {}), "upgrade")


def prepare(state_dir: "str | Path", config_path: "str | Path | None", argv: list[str]) -> str | None:
    """Run at the start of `bijli meter`, before anything else. Returns the image this process
    runs (None: the base build) when it should go on; otherwise re-executes into the right
    build and does not return. ``argv`` is the command line after the program name
    (``sys.argv[1:]``, starting with ``meter``)."""
    if ENV_IMAGE in os.environ:
        return running_image()  # this start was already decided by the launcher that exec'd us
    cfg = upgrade_config(config_path)
    plan = plan_start(state_dir, cfg.start_attempts)
    if plan.note:
        print(f"bijli launcher: {plan.note}", file=sys.stderr, flush=True)
    if plan.image is None:
        os.environ[ENV_IMAGE] = ""  # decided: the base build, in this very process
        return None
    exec_meter(state_dir, plan.image, argv)
    raise AssertionError("unreachable")  # pragma: no cover


def restart(state_dir: "str | Path", config_path: "str | Path | None", argv: list[str]) -> None:
    """Hand over to the build the launcher picks now (after the meter shut down for an activation)."""
    cfg = upgrade_config(config_path)
    plan = plan_start(state_dir, cfg.start_attempts)
    if plan.note:
        print(f"bijli launcher: {plan.note}", file=sys.stderr, flush=True)
    exec_meter(state_dir, plan.image, argv)


def exec_meter(state_dir: "str | Path", image: str | None, argv: list[str]) -> None:
    """Replace this process with the meter running from ``image`` (None: the base build)."""
    os.execve(sys.executable, [sys.executable, "-P", "-m", "bijli.tools.cli", *argv], child_environment(state_dir, image))


def _base_root() -> str:
    """The folder that holds the running ``bijli`` package: site-packages, or a source tree."""
    import bijli
    return str(Path(bijli.__file__).resolve().parents[1])


def child_environment(state_dir: "str | Path", image: str | None, environ=None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    base = env.get(ENV_BASE) or _base_root()
    original = env[ENV_PATH] if ENV_PATH in env else env.get("PYTHONPATH", "")
    root = str((images_dir(state_dir) / image).resolve()) if image else base
    env.update({ENV_IMAGE: image or "", ENV_BASE: base, ENV_PATH: original,
                "PYTHONPATH": os.pathsep.join(p for p in (root, original) if p)})
    return env


def mark_healthy(state_dir: "str | Path") -> bool:
    """The running meter has served long enough: a pending image it runs becomes the active one.
    True if this promoted an image."""
    return promote(state_dir, running_image())


def main(argv: list[str] | None = None) -> int:
    """``python -m bijli.tools.node.launcher meter ARGS``: the launcher, then `bijli meter ARGS` (for a
    unit file or a test that wants the launcher whatever `bijli meter` itself does)."""
    from bijli.tools import cli

    argv = list(sys.argv[1:] if argv is None else argv)
    args = cli.build_parser(argv).parse_args(argv)
    if getattr(args, "command", None) == "meter":
        try:
            prepare(args.state, args.config, argv)
        except ConfigError as exc:
            print(f"bijli launcher: {exc}", file=sys.stderr)
            return 2
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
