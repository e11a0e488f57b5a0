"""Unit tests have no network: pytest-socket blocks sockets unless a test is marked
``server`` or ``browser``, and those may reach loopback only (tests/conftest.py)."""

from __future__ import annotations

import socket
import threading

import pytest
from pytest_socket import SocketBlockedError, SocketConnectBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


def test_a_unit_test_cannot_open_an_internet_socket() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("example.com", 443)


def test_a_unit_test_may_use_unix_sockets() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"


@pytest.mark.server
def test_a_server_test_reaches_loopback_and_nothing_else() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        t = threading.Thread(target=lambda: srv.accept()[0].close(), daemon=True)
        t.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        t.join(5)
    with pytest.raises(SocketConnectBlockedError), socket.socket() as s:
        s.connect(("192.0.2.1", 80))  # TEST-NET-1: never reached, refused before connecting
