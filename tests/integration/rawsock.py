"""A bare client socket with a receive buffer and deadlines, the base of
the tests' strict protocol clients (conftest.RawSmtp, pop3_fixture.RawPop3)."""

import socket
import time


class RawSocket:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=10.0):
        return cls(socket.create_connection((host, port), timeout=timeout), timeout)

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        """More bytes into buf before deadline (monotonic), or
        TimeoutError / EOFError (a reset counts as the end)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete reply; buffer %r" % self.buf[-500:])
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete reply; buffer %r" % self.buf[-500:]) from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed; buffer %r" % self.buf[-500:])
        self.buf += chunk

    def read_to_eof(self, timeout=10.0):
        """Everything until the server closes: (data, closed)."""
        deadline = time.monotonic() + timeout
        data, self.buf = self.buf, b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data, False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return data, False
            except (ConnectionResetError, BrokenPipeError):
                return data, True
            except OSError as e:      # ssl errors at close
                if "EOF" in str(e) or "closed" in str(e).lower():
                    return data, True
                raise
            if not chunk:
                return data, True
            data += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
