"""A TLS server or client on Python's `ssl`, run inside a test namespace.

    python3 tls_peer.py server IP PORT CERT KEY MIN MAX ALPN     (ALPN comma-separated, "-" for none)
    python3 tls_peer.py client IP PORT SNI MIN MAX ALPN [split]   (SNI "-" for none)

MIN/MAX are `1.2` or `1.3`. The server answers every connection's line with the same line; the client
sends one line, prints what the handshake chose (or the error) and exits 0 either way. With `split`
the client writes its ClientHello in two TCP segments (two sends 0.2 s apart, Nagle off).
"""

from __future__ import annotations

import socket
import ssl
import sys
import time

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _context(side: int, low: str, high: str, alpn: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(side)
    ctx.minimum_version = VERSIONS[low]
    ctx.maximum_version = VERSIONS[high]
    if alpn != "-":
        ctx.set_alpn_protocols(alpn.split(","))
    return ctx


def server(ip: str, port: str, cert: str, key: str, low: str, high: str, alpn: str) -> None:
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, low, high, alpn)
    ctx.load_cert_chain(cert, key)
    with socket.create_server((ip, int(port))) as listener:
        while True:
            conn, _ = listener.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(1024))
            except (ssl.SSLError, OSError):
                conn.close()


def client(ip: str, port: str, sni: str, low: str, high: str, alpn: str, split: str = "") -> None:
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, low, high, alpn)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, int(port)), timeout=10) as raw:
        if split:
            _split_hello_client(ctx, raw, None if sni == "-" else sni)
            return
        try:
            with ctx.wrap_socket(raw, server_hostname=None if sni == "-" else sni) as tls:
                tls.sendall(b"ping\n")
                tls.recv(1024)
                print(tls.version(), tls.selected_alpn_protocol(), tls.cipher()[0])
        except ssl.SSLError as exc:
            print("refused", exc.reason)


def _split_hello_client(ctx: ssl.SSLContext, sock: socket.socket, sni: str | None) -> None:
    """The handshake through memory BIOs, so that the ClientHello can be sent in two pieces."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        hello = outgoing.read()
        half = len(hello) // 2
        sock.sendall(hello[:half])
        time.sleep(0.2)
        sock.sendall(hello[half:])
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed during the handshake") from None
            incoming.write(data)
    tls.write(b"ping\n")
    sock.sendall(outgoing.read())
    print(tls.version(), tls.selected_alpn_protocol(), tls.cipher()[0])


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](*sys.argv[2:])
