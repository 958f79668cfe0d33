"""Files a Raspberry Pi test rig needs, as templates `bijli flash` fills in.

Kept as Python string constants (not package data) so they travel inside the
wheel with no packaging configuration. Placeholders are ``@NAME@`` (autoconf
style), because systemd units use ``%`` specifiers and shell scripts ``$``.
The unit follows systemd.service(5)/systemd.exec(5), the user entry
sysusers.d(5), the device name udev(7).
"""

from __future__ import annotations

import re

__all__ = ["render", "SERVICE_UNIT", "INSTALL_UNIT", "INSTALL_SH", "SYSUSERS", "UDEV_RULE",
           "DEFAULT_CONFIG", "README_RIG"]

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def render(template: str, **values: object) -> str:
    """Fill ``@NAME@`` from ``values`` (keys in lower case); a missing one is a bug."""
    def sub(m: re.Match) -> str:
        key = m.group(1).lower()
        if key not in values:
            raise KeyError(f"template needs {m.group(0)}")
        return str(values[key])
    return _PLACEHOLDER.sub(sub, template)


SERVICE_UNIT = """\
# bijli meter on a Raspberry Pi rig. Written by `bijli flash`; rerun it rather than editing here
# (or put overrides in /etc/systemd/system/bijli-meter.service.d/*.conf).
[Unit]
Description=bijli prepaid smart meter
Documentation=file:/opt/bijli/README.rig.md
Wants=bijli-install.service
After=bijli-install.service time-sync.target
# give up after 10 crashes in 5 minutes instead of looping for ever
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
# the optical port and the service console come from /etc/bijli/meter.toml ([hal] optical, console)
ExecStart=/opt/bijli/venv/bin/bijli meter --config /etc/bijli/meter.toml
# always: `quit` typed on the UART console ends the process cleanly (exit 0), and a rig must
# not stay without its meter until someone reboots it; `systemctl stop` still stops it
Restart=always
RestartSec=5
WatchdogSec=@WATCHDOG_SEC@
TimeoutStartSec=90
User=@USER@
Group=@USER@
SupplementaryGroups=dialout gpio spi i2c
StateDirectory=bijli
StateDirectoryMode=0750
WorkingDirectory=/var/lib/bijli
Environment=PYTHONUNBUFFERED=1

# Hardening that still lets the meter reach its hardware. PrivateDevices= stays
# off because it would hide /dev/ttyUSB*, /dev/gpiochip*, /dev/gpiomem, /dev/spidev*
# and /dev/i2c-*; device access is instead limited by the groups above.
# ProtectKernelTunables= stays off: gpiozero's native pins use /sys/class/gpio.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=no
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
CapabilityBoundingSet=
UMask=0027

[Install]
WantedBy=multi-user.target
"""

INSTALL_UNIT = """\
# Installs or upgrades /opt/bijli/venv from /opt/bijli/wheels; a no-op when up to date.
[Unit]
Description=bijli: install the meter from /opt/bijli/wheels
After=local-fs.target systemd-sysusers.service
Before=bijli-meter.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh /opt/bijli/install.sh
TimeoutStartSec=30min

[Install]
WantedBy=multi-user.target
"""

INSTALL_SH = """\
#!/bin/sh
# Install (or upgrade) bijli into /opt/bijli/venv from the wheels beside this script.
# Run by bijli-install.service at boot; quick no-op when the wheels have not changed.
# Offline when every dependency's wheel is in /opt/bijli/wheels (bijli flash --wheelhouse
# or --download-deps); otherwise falls back to the package index (piwheels on Raspberry Pi OS).
# BIJLI_ROOT prefixes every path (for trying it out in a staging tree).
set -eu
ROOT="${BIJLI_ROOT:-}"
BASE="$ROOT/opt/bijli"
WHEELS="$BASE/wheels"
VENV="$BASE/venv"
STAMP="$VENV/.wheels.sha256"
PYTHON="${BIJLI_PYTHON:-python3}"

want=$(cd "$WHEELS" && ls -1 -- *.whl | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/bijli" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "bijli: already installed from these wheels"
    exit 0
fi

# --system-site-packages: gpiozero's pin libraries (python3-lgpio, python3-rpi-lgpio),
# spidev and smbus2 come from apt on Raspberry Pi OS, built for the board.
"$PYTHON" -m venv --system-site-packages "$VENV"
if ! "$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" --upgrade bijli; then
    echo "bijli: some dependency wheels are missing from $WHEELS; trying the package index" >&2
    "$VENV/bin/python" -m pip install --find-links "$WHEELS" --upgrade bijli
fi
# the same version number may carry new code on a rig: always put this wheel in
"$VENV/bin/python" -m pip install --no-index --no-deps --force-reinstall "$WHEELS"/bijli-*.whl
echo "$want" > "$STAMP"
echo "bijli: installed $("$VENV/bin/python" -m pip show bijli | sed -n 's/^Version: //p')"
"""

SYSUSERS = """\
# The unprivileged user the meter runs as (sysusers.d(5)); it owns /var/lib/bijli.
u @USER@ - "bijli prepaid meter" /var/lib/bijli /usr/sbin/nologin
m @USER@ dialout
m @USER@ gpio
m @USER@ spi
m @USER@ i2c
"""

UDEV_RULE = """\
# The optical probe (a USB serial adapter, @PROBE_VID@:@PROBE_PID@) gets a stable name,
# /dev/bijli-optical, whatever ttyUSB number it enumerates as.
SUBSYSTEM=="tty", ATTRS{idVendor}=="@PROBE_VID@", ATTRS{idProduct}=="@PROBE_PID@", \
SYMLINK+="bijli-optical", GROUP="dialout", MODE="0660", TAG+="systemd"
"""

DEFAULT_CONFIG = """\
# bijli meter configuration for a Raspberry Pi rig (written by `bijli flash`; edit freely,
# `bijli flash` keeps an existing file unless given --config). `bijli meter --config` reads
# exactly these keys; every key has a default; README "Configuration" lists them all.

[meter]
serial = "BJL0000001"
manufacturer = "BJL"

[storage]
save_interval_s = 60.0

# Hardware backends (hal): which real parts this rig has.
[hal]
clock = "real"
# ADC for voltage and current samples: an MCP3208 on SPI bus 0, chip select 0
samples = "spi:0.0"
# gpiozero pin factory: "lgpio" (Raspberry Pi OS bookworm), "native", "rpigpio", or "mock"
pin_factory = "lgpio"
# one key per pin role, "gpio:N" (BCM numbering) or "none"
relay = "gpio:17"
relay_feedback = "gpio:27"
pulse_led = "gpio:22"
alarm_led = "gpio:23"
button = "gpio:24"
cover = "gpio:25"
magnet = "gpio:5"
# "console" (the journal), or "hd44780:BUS:ADDR" for a 2x16 LCD on a PCF8574 I2C backpack
display = "hd44780:1:0x27"
# the optical probe (IEC 62056-21 mode E at 300 baud, then HDLC); udev names it
optical = "/dev/bijli-optical"
# the service console on the Pi's UART (the unit has no terminal)
console = "/dev/ttyAMA0"
"""

README_RIG = """\
# bijli test rig (Raspberry Pi)

This card was prepared by `bijli flash`. It runs the bijli prepaid meter as a
systemd service, with a real optical probe, relay and ADC.

## First boot
1. Boot the Pi with network or without: `bijli-install.service` creates
   `/opt/bijli/venv` from the wheels in `/opt/bijli/wheels` (offline when all
   dependency wheels are there; otherwise it fetches the missing ones).
   Progress: `journalctl -u bijli-install -b`.
2. `bijli-meter.service` starts after it, as user `@USER@`.
3. Plug in the optical probe (USB serial @PROBE_VID@:@PROBE_PID@): it appears as
   `/dev/bijli-optical`.

Install the board libraries once if the image lacks them:
`sudo apt install python3-lgpio python3-spidev python3-smbus2`, and enable SPI
and I2C with `sudo raspi-config nonint do_spi 0; sudo raspi-config nonint do_i2c 0`.

## Where things are
| what | where |
|---|---|
| configuration | `/etc/bijli/meter.toml` (restart after editing) |
| meter state (sqlite) | `/var/lib/bijli/state/` |
| program | `/opt/bijli/venv/bin/bijli` |
| logs | `journalctl -u bijli-meter -f` |
| service | `systemctl status bijli-meter` (also restart, stop) |
| udev rule | `/etc/udev/rules.d/99-bijli-optical.rules` |

The service runs with `Type=notify` and `WatchdogSec=@WATCHDOG_SEC@`: systemd restarts the
meter if it stops reporting, and `systemctl status bijli-meter` shows its status line.

## Reaching the meter
- Over the optical probe from another machine (IEC 62056-21 mode E, then HDLC):
  `bijli read 0.0.1.0.0.255 --target serial:///dev/ttyUSB0 --mode-e` on that
  machine, with its probe on the meter's optical port.
- Over the network: the meter serves the DLMS wrapper on 127.0.0.1:4059 (add
  `--tcp 0.0.0.0:4059` to the unit through a drop-in to open it to the rig's LAN).
- The service console: on the UART, `[hal] console` in `/etc/bijli/meter.toml`
  (`/dev/ttyAMA0` by default); from another machine `bijli console --port /dev/ttyUSB1`.
  `quit` there stops the meter process; systemd starts it again after 5 s
  (`Restart=always`). Stop it for good with `sudo systemctl stop bijli-meter`.

## Upgrading
On the build machine run `bijli flash --target /media/$USER/rootfs` again (or into
a staging folder and `rsync` it over); the next boot installs the new wheel, or
run `sudo systemctl restart bijli-install bijli-meter` at once.
"""
