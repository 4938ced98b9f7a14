# Loaded by every notebook kernel that `make test` and `make book` start (IPYTHONDIR
# points here): any connection to a non-loopback address fails loudly, so a notebook
# that tries to download something breaks the build instead of passing by luck.
import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check_loopback(sock, address):
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(
            f"Network access to {host!r} is blocked while the course's tests run: "
            "notebooks must work offline (generate data or use bundled data sets)."
        )


def _guarded_connect(self, address):
    _check_loopback(self, address)
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    _check_loopback(self, address)
    return _connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
