"""`bijli meter` under a connection flood and at shutdown (issue 14 items 7 and 9), as a process.

Real subprocesses, real sockets on 127.0.0.1: the meter with a lowered open-file
limit (resource.setrlimit in the child) against a flood of peers that never
associate; and `quit` on the console while TCP peers are still connected.
"""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import sys
import time

from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.obis import Obis
from bijli.tools.node.client_transports import open_client_transport
from tests.conftest import ROOT

CLOCK = Obis(0, 0, 1, 0, 0, 255)


def _start(tmp_path, *extra, nofile: int | None = None, config: str | None = None):
    args = [sys.executable, "-m", "bijli.tools.cli", "meter", "--tcp", "127.0.0.1:0", "--hdlc-tcp", "127.0.0.1:0",
            "--state", str(tmp_path / "state"), *extra]
    if config is not None:
        (tmp_path / "meter.toml").write_text(config, encoding="utf-8")
        args += ["--config", str(tmp_path / "meter.toml")]

    def limit():
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limit)
    ports = {}
    deadline = time.monotonic() + 20
    while "wrapper" not in ports:
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, proc.stderr.read()
        for kind, pattern in (("hdlc", r"HDLC listening on [\d.]+:(\d+)"), ("wrapper", r"wrapper listening on [\d.]+:(\d+)")):
            m = re.search(pattern, line)
            if m:
                ports[kind] = int(m.group(1))
    return proc, ports


def _read_clock(port: int) -> None:
    client = Client(open_client_transport(f"tcp://127.0.0.1:{port}", 16, timeout=3.0), ClientSettings.for_association(16))
    try:
        client.associate()
        assert client.get(8, CLOCK, 2) is not None
    finally:
        client.close()


def test_quit_with_tcp_peers_connected_prints_no_traceback(tmp_path):
    proc, ports = _start(tmp_path)
    try:
        proc.stdout.readline()  # "service console on this terminal"
        client = Client(open_client_transport(f"tcp://127.0.0.1:{ports['wrapper']}", 16),
                        ClientSettings.for_association(16))
        client.associate()  # associated, never released
        idle = socket.create_connection(("127.0.0.1", ports["wrapper"]))
        hdlc_peer = socket.create_connection(("127.0.0.1", ports["hdlc"]))
        time.sleep(0.3)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "CancelledError" not in err, err
    for s in (idle, hdlc_peer):
        s.close()
    client.transport.line.close()


def test_a_flood_under_a_low_fd_limit_is_answered_cleanly_and_legitimate_reads_get_through(tmp_path):
    # 96 descriptors in all, the cap left at its default (128): the meter must lower it by itself
    proc, ports = _start(tmp_path, "--console", "none", nofile=96, config="[dlms]\nassociation_timeout_s = 1.0\n")
    flood = []
    try:
        for _ in range(300):  # peers that connect and never say a word
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", ports["wrapper"]))
            flood.append(s)
        time.sleep(1.0)
        # a head-end still reads the clock while the flood is held open
        deadline = time.monotonic() + 20
        while True:
            try:
                _read_clock(ports["wrapper"])
                break
            except (OSError, TimeoutError) as exc:
                assert time.monotonic() < deadline, f"no read got through the flood: {exc}"
                time.sleep(0.2)
        time.sleep(2.0)  # go on flooding a little: nothing more may be logged
    finally:
        for s in flood:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err[:3000]
    assert len(err.splitlines()) <= 6, err[:3000]
