"""Choosing ports for nats-server (embedded by ``bastion up``, and every test's server and cluster node).

A port from ``bind(0)`` lies in the kernel's ephemeral range, where outgoing connections also take their
source ports, so a cluster node dialling a peer could take a route port chosen for a node not yet started.
``free_port`` chooses below that range, and skips ports something already holds."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from bastion import natsd
from bastion.natsd import can_bind, ephemeral_ports, free_port


def test_free_ports_lie_below_the_kernels_ephemeral_range_and_can_be_bound() -> None:
    low, _ = ephemeral_ports()
    ports = {free_port() for _ in range(20)}
    assert all(natsd.LOWEST_PORT <= p < low for p in ports), sorted(ports)
    assert all(can_bind(p) for p in ports)
    assert len(ports) > 1


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken = held.getsockname()[1]
        spare = free_port()
        monkeypatch.setattr(natsd, "_handed_out", set())
        choices = iter([taken, taken, spare])
        monkeypatch.setattr(random, "randrange", lambda *_: next(choices))
        assert not can_bind(taken)
        assert free_port() == spare


def test_one_process_never_gets_the_same_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three route ports of a cluster are chosen before any node binds one."""
    first, second = free_port(), free_port()
    monkeypatch.setattr(natsd, "_handed_out", set())
    choices = iter([first, first, first, second])
    monkeypatch.setattr(random, "randrange", lambda *_: next(choices))
    assert [free_port(), free_port()] == [first, second]


def kernel_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """``ip_local_port_range`` as a kernel with ``text`` there would give it."""
    fake = tmp_path / "ip_local_port_range"
    fake.write_text(text)
    monkeypatch.setattr(natsd, "EPHEMERAL_RANGE", fake)


def test_the_range_is_read_from_the_kernel_with_the_linux_default_as_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel_range(tmp_path, monkeypatch, "40000\t50000\n")
    assert ephemeral_ports() == (40000, 50000)
    assert all(p < 40000 for p in (free_port() for _ in range(10)))
    monkeypatch.setattr(natsd, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ephemeral_ports() == (32768, 60999)


def test_with_no_room_below_the_range_the_kernel_chooses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel_range(tmp_path, monkeypatch, "10500 65000\n")
    assert can_bind(free_port())
