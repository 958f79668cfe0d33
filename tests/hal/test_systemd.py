"""hal.systemd sends sd_notify datagrams to a real AF_UNIX socket."""

import os
import socket
import uuid

from bijli.hal import systemd


def _listener(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock


def test_ready_and_watchdog_reach_socket_from_env(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with _listener(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.ready()
        assert sock.recv(256) == b"READY=1"
        assert systemd.watchdog_ping()
        assert sock.recv(256) == b"WATCHDOG=1"
        assert systemd.status("credit low\nrelay open")
        assert sock.recv(256) == b"STATUS=credit low relay open"


def test_abstract_namespace_socket(monkeypatch):
    name = f"bijli-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert systemd.notify("STOPPING=1", socket_path="@" + name)
        assert sock.recv(64) == b"STOPPING=1"


def test_no_manager_is_a_quiet_no_op(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.ready() is False
    # a socket path nobody listens on: reported, not raised
    assert systemd.notify("READY=1", socket_path=str(tmp_path / "gone")) is False
    assert systemd.notify("READY=1", socket_path="relative/path") is False


def test_watchdog_interval(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval() is None  # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_USEC", "junk")
    assert systemd.watchdog_interval() is None
