"""Ports and addresses: a stable port the user can point tools at, and honest LAN addresses.

Editors, Open WebUI and scripts break when the port changes at every launch, so the port is a
setting, and Auto keeps the port it used last time (stored with the settings) for as long as it is
free; only when another program holds it does Auto move, to its next free neighbour, and say so
(the address copied into a chat client would otherwise break at the next start without a word). A taken port is explained with the program that holds it, when
the OS tells (psutil; other users' processes may be hidden), and the next free port is offered.
With LAN on, the addresses other devices can use are this machine's own non-loopback ones.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass

import psutil


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now, as llama-server binds it: its HTTP library sets
    SO_REUSEADDR on POSIX, so the TIME_WAIT left by a server that just stopped does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if sys.platform != "win32":  # on Windows SO_REUSEADDR would let us bind over a live listener
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(start: int, host: str = "127.0.0.1", tries: int = 200) -> int:
    """The first free port after ``start`` (a neighbour is easier to remember than a random one)."""
    for port in range(start + 1, min(start + 1 + tries, 65536)):
        if port_is_free(port, host):
            return port
    return free_port(host)


@dataclass(frozen=True)
class AutoPort:
    """The port Auto uses: the last one while it is free; when it had to move, from where."""

    port: int
    moved_from: int | None = None  # the port Auto used last time, taken now

    def note(self) -> str:
        """What the window says under the port ('' when nothing moved)."""
        if self.moved_from is None:
            return ""
        return (f"Auto moved to port {self.port}: port {self.moved_from}, which it used last time, is taken "
                "now; clients set to the old address need the new one")


def auto_port(last: int | None, host: str = "127.0.0.1") -> AutoPort:
    """Auto's port at this start: the one it used last time while it is free, else its next free neighbour
    (a fresh one from the OS when there was none). Binding a socket is cheap: fine on the GUI thread."""
    if last and 1 <= last <= 65535:
        if port_is_free(last, host):
            return AutoPort(last)
        return AutoPort(next_free_port(last, host), moved_from=last)
    return AutoPort(free_port(host))


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    name: str | None

    def describe(self) -> str:
        if self.name and self.pid:
            return f"{self.name} (pid {self.pid})"
        if self.pid:
            return f"process {self.pid}"
        return "another program"


def port_holder(port: int) -> PortHolder | None:
    """Who listens on ``port``, as far as the OS says; None when nobody listens."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        conns = []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
            name = None
            if c.pid:
                try:
                    name = psutil.Process(c.pid).name()
                except psutil.Error:
                    pass
            return PortHolder(c.pid, name)
    return None if port_is_free(port) else PortHolder(None, None)


def port_in_use_message(port: int) -> str:
    holder = port_holder(port)
    who = holder.describe() if holder else "another program"
    return f"port {port} is already in use by {who}"


def lan_addresses() -> list[str]:
    """IPv4 addresses of this machine that other devices on the network can reach (no loopback,
    no link-local); the wildcard 0.0.0.0 the server binds to is not an address anyone can use."""
    out: list[str] = []
    try:
        interfaces = psutil.net_if_addrs()
    except (psutil.Error, OSError):
        return out
    for addrs in interfaces.values():
        for a in addrs:
            if a.family != socket.AF_INET:
                continue
            try:
                ip = ipaddress.ip_address(a.address)
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            if a.address not in out:
                out.append(a.address)
    return sorted(out, key=lambda s: (not ipaddress.ip_address(s).is_private, s))


def lan_urls(port: int) -> list[str]:
    return [f"http://{ip}:{port}/v1" for ip in lan_addresses()]


@dataclass(frozen=True)
class PortCheck:
    """Whether a launch can use ``port``; when not, who holds it and the next free neighbour."""

    port: int
    free: bool
    message: str = ""  # "port 8080 is already in use by python3 (pid 123)"
    next_free: int | None = None


def check_port(port: int) -> PortCheck:
    """Check a port just before a launch (asking the OS who holds it can be slow: not on the GUI thread)."""
    if port_is_free(port):
        return PortCheck(port, True)
    return PortCheck(port, False, port_in_use_message(port), next_free_port(port))
