"""Network namespaces for live tests: create namespaces and veth pairs with addresses, run commands
and background processes inside, and always clean up (processes first, then the namespaces).

    from tests.netns import linked_pair, netns_available

    with linked_pair() as link:          # two namespaces joined by a veth pair
        server = link.b.popen([sys.executable, "-m", "http.server", "8080", "--bind", link.b_ip])
        link.b.wait_tcp(link.b_ip, 8080)
        link.a.run(["curl", f"http://{link.b_ip}:8080/"])

Lower-level pieces: `netns()` (one namespace, loopback up) and `veth(left, right, ...)` (a pair with
one end in `left` — or the root namespace when `left` is None — and the other in `right`).
Names are unique per process (`<prefix><pid>x<n>`), interface names stay within 15 characters.
Only addresses inside namespaces this helper made are used.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

_counter = itertools.count()


def netns_available() -> bool:
    """True when this process may create network namespaces (root and the `ip` tool)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}x{next(_counter)}"


class Netns:
    """One network namespace; processes started with `popen` are stopped when it is deleted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen] = []

    def cmd(self, args: Sequence[str]) -> list[str]:
        """`args` prefixed so they run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, args: Sequence[str], check: bool = True, timeout: float = 60, **kw: object
            ) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.cmd(args), check=check, timeout=timeout, **kw)  # type: ignore[call-overload]

    def popen(self, args: Sequence[str], **kw: object) -> subprocess.Popen:
        """Start a background process in the namespace (own process group; stopped at cleanup)."""
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.cmd(args), start_new_session=True, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def wait_tcp(self, ip: str, port: int, timeout: float = 10.0) -> None:
        """Wait until something accepts TCP connections on ip:port inside the namespace."""
        probe = (f"import socket,sys\ns=socket.socket(socket.AF_INET6 if ':' in {ip!r} else socket.AF_INET)\n"
                 f"s.settimeout(0.5)\nsys.exit(s.connect_ex(({ip!r}, {port})))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run(["python3", "-c", probe], check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"nothing listens on {ip}:{port} in {self.name}")

    def packet_socket_open(self, iface: str) -> bool:
        """Whether a packet socket is bound to `iface` in the namespace (`ss -0`): a live capture
        there gets every packet of the interface from then on."""
        lines = self.run(["ss", "-a", "-0", "-n"], check=False).stdout.splitlines()
        return any(f"*:{iface}" in line for line in lines)

    def stop_processes(self, timeout: float = 5.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        self.procs.clear()


@contextmanager
def netns(prefix: str = "kfl") -> Iterator[Netns]:
    """A fresh namespace with loopback up; its processes are stopped and it is deleted on exit."""
    ns = Netns(_unique(prefix))
    _ip("netns", "add", ns.name)
    try:
        ns.run(["ip", "link", "set", "lo", "up"])
        yield ns
    finally:
        try:
            ns.stop_processes()
        finally:
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=30)


@contextmanager
def veth(left: Netns | None, right: Netns, left_addr: str, right_addr: str, prefix: str = "kv"
         ) -> Iterator[tuple[str, str]]:
    """A veth pair `(left_name, right_name)`, addresses in CIDR form (`10.9.0.1/24`, `fd00::1/64`)."""
    base = _unique(prefix)
    names = (f"{base}a", f"{base}b")
    _ip("link", "add", names[0], "type", "veth", "peer", "name", names[1])
    try:
        _ip("link", "set", names[1], "netns", right.name)
        if left is not None:
            _ip("link", "set", names[0], "netns", left.name)
        for ns, name, addr in ((left, names[0], left_addr), (right, names[1], right_addr)):
            run = ns.run if ns is not None else (lambda a: subprocess.run(a, check=True, capture_output=True))
            run(["ip", "addr", "add", addr, "dev", name])
            run(["ip", "link", "set", name, "up"])
            if ":" in addr:
                run(["sysctl", "-q", "-w", f"net.ipv6.conf.{name}.accept_dad=0"])
        yield names
    finally:
        if left is None:  # the right end goes away with its namespace; the root end does not
            subprocess.run(["ip", "link", "del", names[0]], capture_output=True, timeout=30)


@dataclass
class Link:
    a: Netns
    b: Netns
    a_if: str
    b_if: str
    a_ip: str
    b_ip: str


@contextmanager
def linked_pair(prefix: str = "kfl", subnet: str = "10.231.0", prefix_len: int = 24) -> Iterator[Link]:
    """Two namespaces joined by a veth pair: `a` has `<subnet>.1`, `b` has `<subnet>.2`."""
    a_ip, b_ip = f"{subnet}.1", f"{subnet}.2"
    with (netns(prefix) as a, netns(prefix) as b,
          veth(a, b, f"{a_ip}/{prefix_len}", f"{b_ip}/{prefix_len}") as ifs):
        yield Link(a, b, ifs[0], ifs[1], a_ip, b_ip)

