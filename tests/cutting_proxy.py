"""A loopback TCP proxy that, while armed, cuts the responses to chosen requests mid-body.

It stands in front of a real HTTP server (moto's S3 in the tests) and passes bytes through
untouched, except that once a request whose bytes contain ``needle`` passes while the proxy is
armed, only ``keep`` more bytes of the answer reach the client before both sockets close:
the connection drops in the middle of a download, as a flaky network or backend does.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(self, upstream_port: int, needle: bytes, keep: int = 1024) -> None:
        self.upstream_port = upstream_port
        self.needle = needle
        self.keep = keep
        self.armed = threading.Event()
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                _close(s)
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, upstream]
            cut = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, cut), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, cut), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.armed.is_set() and self.needle in data:
                    cut.set()
                upstream.sendall(data)
        except OSError:
            pass
        _close(upstream)

    def _responses(self, upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        sent_since_cut = 0
        try:
            while data := upstream.recv(65536):
                if cut.is_set():
                    data = data[: self.keep - sent_since_cut]
                    sent_since_cut += len(data)
                    client.sendall(data)
                    if sent_since_cut >= self.keep:
                        self.cuts += 1
                        break
                    continue
                client.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(upstream)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
