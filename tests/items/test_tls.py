"""TLS handshake items from real traffic: Python `ssl` and `openssl s_server`/`s_client` in network
namespaces, captured by dumpcap on the veth, compared with tshark's view of the same capture.

Scenarios (one server port each): TLS 1.3 with ALPN offered, TLS 1.2 with ALPN chosen and a
two-certificate chain, a refused handshake (server 1.3 only, client 1.2 only), OpenSSL TLS 1.2 with
records of at most 512 bytes (the Certificate message spans several records), OpenSSL TLS 1.3
without SNI and with a HelloRetryRequest (the server wants another key share group). tshark 4.0
has no JA4: the oracle's JA4 is computed from tshark's fields of the ClientHello (ciphers,
extension types, signature algorithms, SNI, ALPN, versions).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import random
import sys
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import kfl
from tests.conftest import sample_pcaps
from tests.items.live import captured, tshark_rows
from tests.items.schema import check_item
from tests.items.test_oracle import key
from tests.items.util import dissect_events, items_of, sample_items

PEER = str(Path(__file__).with_name("tls_peer.py"))
PY, PY12, REFUSED, OSSL12, OSSL13 = 8443, 8444, 8445, 8446, 8447
SNI = {PY: "api.kfl.internal", PY12: "legacy.kfl.internal", REFUSED: "old.kfl.internal",
       OSSL12: "frag.kfl.internal", OSSL13: ""}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kflpcap tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(folder: Path, server_ip: str) -> dict[str, Path]:
    """A self-signed CA and a leaf it signs (SANs: DNS names and the server's IP), as PEM files."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    day = datetime.timedelta(days=1)
    ca_name = _name("kflpcap test CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - day).not_valid_after(now + 30 * day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    sans = [x509.DNSName("tls.kfl.internal"), x509.DNSName("*.kfl.internal"),
            x509.IPAddress(ipaddress.ip_address(server_ip))]
    leaf = (x509.CertificateBuilder().subject_name(_name("tls.kfl.internal")).issuer_name(ca.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + 7 * day)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    files = {"leaf": folder / "leaf.pem", "ca": folder / "ca.pem", "key": folder / "leaf.key",
             "chain": folder / "chain.pem"}
    files["leaf"].write_bytes(leaf.public_bytes(pem))
    files["ca"].write_bytes(ca.public_bytes(pem))
    files["chain"].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    files["key"].write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return files


def _py_server(link, port: int, files: dict[str, Path], low: str, high: str, alpn: str) -> None:
    link.b.popen([sys.executable, PEER, "server", link.b_ip, str(port), str(files["chain"]),
                  str(files["key"]), low, high, alpn])


def _ossl_server(link, port: int, files: dict[str, Path], *options: str) -> None:
    link.b.popen(["openssl", "s_server", "-accept", f"{link.b_ip}:{port}", "-cert", str(files["leaf"]),
                  "-key", str(files["key"]), "-cert_chain", str(files["ca"]), "-rev", "-quiet", *options])


def _ossl_client(link, port: int, *options: str) -> None:
    link.a.run(["openssl", "s_client", "-connect", f"{link.b_ip}:{port}", "-brief", *options],
               input="ping\n", check=False, timeout=30)


def record_traffic(pcap: Path, folder: Path, split: bool = False) -> dict[str, Path]:
    """Run every scenario once (one connection per server port) while dumpcap records `pcap`; with
    `split` the Python clients send their ClientHello in two TCP segments."""
    with captured(pcap) as link:
        files = make_certificates(folder, link.b_ip)
        _py_server(link, PY, files, "1.2", "1.3", "h2,http/1.1")
        _py_server(link, PY12, files, "1.2", "1.2", "http/1.1")
        _py_server(link, REFUSED, files, "1.3", "1.3", "-")
        _ossl_server(link, OSSL12, files, "-tls1_2", "-max_send_frag", "512", "-alpn", "h2")
        _ossl_server(link, OSSL13, files, "-tls1_3", "-groups", "secp384r1")  # a HelloRetryRequest
        for port in (PY, PY12, REFUSED, OSSL12, OSSL13):
            link.b.wait_tcp(link.b_ip, port)
        client = [sys.executable, PEER, "client", link.b_ip]
        last = ["split"] if split else []
        link.a.run([*client, str(PY), SNI[PY], "1.2", "1.3", "h2,http/1.1", *last])
        link.a.run([*client, str(PY12), SNI[PY12], "1.2", "1.3", "h2,http/1.1", *last])
        link.a.run([*client, str(REFUSED), SNI[REFUSED], "1.2", "1.2", "-", *last], check=False)
        _ossl_client(link, OSSL12, "-servername", SNI[OSSL12], "-alpn", "h2,http/1.1", "-tls1_2")
        _ossl_client(link, OSSL13, "-noservername", "-tls1_3")
    return files


@pytest.fixture(scope="module")
def tls_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    pcap = folder / "tls.pcap"
    return pcap, record_traffic(pcap, folder)


@cache
def tls_items(pcap: Path) -> dict[int, dict]:
    """Our TLS items by server port (one connection each)."""
    out: dict[int, dict] = {}
    for item in items_of(pcap):
        assert item["protocol"]["name"] == "tls", item["protocol"]
        check_item(item)
        port = int(item["dst"]["port"])
        assert port not in out, f"two items for port {port}"
        out[port] = item
    return out


GREASE = {f"0x{b:02x}{b:02x}" for b in range(0x0A, 0x100, 0x10)}
NAMES = {"0x0301": "TLS 1.0", "0x0302": "TLS 1.1", "0x0303": "TLS 1.2", "0x0304": "TLS 1.3"}


def _list(text: str) -> list[str]:
    return [v for v in text.split(",") if v and v not in GREASE]


def tshark_handshakes(pcap: Path) -> dict[int, dict[str, str]]:
    """Per server port, tshark's fields of the ClientHello (`c_*`), ServerHello (`s_*`), the
    Certificate (`cert_*`) and any alert, from the packets that carry them (reassembled)."""
    fields = ["tcp.srcport", "tcp.dstport", "tls.handshake.type", "tls.handshake.extensions_server_name",
              "tls.handshake.extensions_alpn_str", "tls.handshake.ja3", "tls.handshake.ja3_full",
              "tls.handshake.ja3s", "tls.handshake.version", "tls.handshake.extensions.supported_version",
              "tls.handshake.ciphersuite", "tls.handshake.extension.type", "tls.handshake.sig_hash_alg",
              "x509ce.dNSName", "x509sat.uTF8String", "tls.alert_message.desc", "tls.record.content_type"]
    out: dict[int, dict[str, str]] = {}
    for row in tshark_rows(pcap, "tls.handshake or tls.alert_message", fields):
        values = dict(zip(fields, row, strict=True))
        types = values["tls.handshake.type"].split(",")
        port = int(values["tcp.dstport"]) if int(values["tcp.dstport"]) in SNI else int(values["tcp.srcport"])
        seen = out.setdefault(port, {})
        if "1" in types and "c_sni" not in seen:
            seen.update(c_sni=values["tls.handshake.extensions_server_name"],
                        c_alpn=values["tls.handshake.extensions_alpn_str"],
                        c_ja3=values["tls.handshake.ja3"], c_ja3_full=values["tls.handshake.ja3_full"],
                        c_versions=values["tls.handshake.extensions.supported_version"],
                        c_legacy=values["tls.handshake.version"],
                        c_ciphers=values["tls.handshake.ciphersuite"],
                        c_ext=values["tls.handshake.extension.type"],
                        c_sigs=values["tls.handshake.sig_hash_alg"])
        if "2" in types and "s_ja3s" not in seen:
            seen.update(s_ja3s=values["tls.handshake.ja3s"],
                        s_alpn=values["tls.handshake.extensions_alpn_str"],
                        s_version=values["tls.handshake.extensions.supported_version"]
                        or values["tls.handshake.version"].split(",")[0],
                        s_cipher=values["tls.handshake.ciphersuite"])
        if "11" in types and "cert_dns" not in seen:
            seen.update(cert_dns=values["x509ce.dNSName"], cert_cn=values["x509sat.uTF8String"])
        if values["tls.alert_message.desc"] and "alert" not in seen:
            seen["alert"] = values["tls.alert_message.desc"]
    return out


def ja4_from_tshark(hs: dict[str, str]) -> str:
    """JA4 (FoxIO's definition) from tshark's fields of a ClientHello."""
    versions = [int(v, 16) for v in _list(hs["c_versions"])] or [int(hs["c_legacy"], 16)]
    version = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}[max(versions)]
    ciphers = [f"{int(c, 16):04x}" for c in _list(hs["c_ciphers"])]
    ext = [f"{int(e):04x}" for e in hs["c_ext"].split(",") if f"0x{int(e):04x}" not in GREASE]
    alpn = hs["c_alpn"].split(",")[0]
    chars = alpn[0] + alpn[-1] if alpn else "00"
    a = f"t{version}{'d' if hs['c_sni'] else 'i'}{len(ciphers):02d}{len(ext):02d}{chars}"
    sigs = [f"{int(s, 16):04x}" for s in _list(hs["c_sigs"])]
    c_text = ",".join(sorted(e for e in ext if e not in ("0000", "0010")))
    if sigs:
        c_text += "_" + ",".join(sigs)
    return "_".join([a, hashlib.sha256(",".join(sorted(ciphers)).encode()).hexdigest()[:12],
                     hashlib.sha256(c_text.encode()).hexdigest()[:12]])


def check_against_tshark(item: dict, hs: dict[str, str]) -> None:
    req = item["request"]
    assert req["sni"] == hs["c_sni"]
    assert req["alpn"] == [v for v in hs["c_alpn"].split(",") if v]
    assert (req["ja3"], req["ja3Full"]) == (hs["c_ja3"], hs["c_ja3_full"])
    assert req["supportedVersions"] == [NAMES[v] for v in _list(hs["c_versions"])]
    assert req["cipherSuitesCount"] == len(_list(hs["c_ciphers"]))
    assert req["ja4"] == ja4_from_tshark(hs)
    resp = item["response"]
    if "s_ja3s" not in hs:
        assert resp["type"] == "Alert" and resp["alert"]["code"] == int(hs["alert"])
        return
    assert resp["ja3s"] == hs["s_ja3s"]
    assert resp["version"] == NAMES[hs["s_version"]]
    assert resp["cipherSuiteCode"] == hs["s_cipher"]
    assert resp["alpn"] == hs["s_alpn"]
    if "cert_dns" in hs:
        assert resp["certificate"]["san"][:2] == hs["cert_dns"].split(",")[:2]
        strings = set(hs["cert_cn"].split(","))  # tshark's UTF8String name parts of every certificate
        for cert in resp["certificates"]:
            parts = (cert["subject"] + "," + cert["issuer"]).split(",")
            assert {p.partition("=")[2] for p in parts} <= strings
    else:
        assert "certificate" not in resp


@pytest.mark.live
def test_tls_items_equal_tshark(tls_capture: tuple[Path, dict[str, Path]]) -> None:
    pcap, _ = tls_capture
    ours, theirs = tls_items(pcap), tshark_handshakes(pcap)
    assert sorted(ours) == sorted(theirs) == sorted(SNI)
    for port, item in ours.items():
        check_against_tshark(item, theirs[port])


@pytest.mark.live
def test_tls_versions_alpn_certificates_and_refusal(tls_capture: tuple[Path, dict[str, Path]]) -> None:
    pcap, files = tls_capture
    items = tls_items(pcap)
    py13, py12, refused = items[PY], items[PY12], items[REFUSED]
    assert (py13["protocol"]["version"], py13["response"]["version"]) == ("1.3", "TLS 1.3")
    assert py13["request"]["alpn"] == ["h2", "http/1.1"]
    assert py13["response"]["alpn"] == ""  # TLS 1.3 sends the chosen ALPN encrypted
    assert "certificate" not in py13["response"] and "error" not in py13
    assert py12["response"]["version"] == "TLS 1.2" and "TLS 1.3" in py12["request"]["supportedVersions"]
    assert py12["response"]["alpn"] == "http/1.1"
    leaf = x509.load_pem_x509_certificate(files["leaf"].read_bytes())
    ca = x509.load_pem_x509_certificate(files["ca"].read_bytes())
    chain = py12["response"]["certificates"]
    assert [c["subject"] for c in chain] == [leaf.subject.rfc4514_string(), ca.subject.rfc4514_string()]
    assert chain[0]["issuer"] == ca.subject.rfc4514_string()
    assert chain[0]["san"] == ["tls.kfl.internal", "*.kfl.internal", "10.232.7.2"]
    assert chain[0]["notAfter"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert refused["response"]["type"] == "Alert"
    assert refused["response"]["alert"]["description"] == "protocol_version"
    assert refused["response"]["alert"]["from"] == "server"
    assert refused["protocol"]["version"] == "1.2"  # refused: the highest offered
    assert items[OSSL12]["response"]["certificate"]["subject"] == leaf.subject.rfc4514_string()
    assert items[OSSL13]["request"]["ja4"].startswith("t13i")
    assert items[OSSL13]["response"]["helloRetryRequest"] is True
    assert items[OSSL13]["response"]["version"] == "TLS 1.3" and "error" not in items[OSSL13]


@pytest.mark.live
def test_certificate_message_split_across_records(tls_capture: tuple[Path, dict[str, Path]]) -> None:
    pcap, _ = tls_capture
    records = tshark_rows(pcap, f"tcp.srcport == {OSSL12} and tls.record.content_type == 22",
                          ["tls.record.length"])
    lengths = [int(x) for row in records for x in row[0].split(",")]
    assert max(lengths) <= 512 and len(lengths) >= 3  # ServerHello, several Certificate fragments, ...
    assert "certificate" in tls_items(pcap)[OSSL12]["response"]


@pytest.mark.live
def test_kfl_selects_tls_connections_by_sni(tls_capture: tuple[Path, dict[str, Path]]) -> None:
    pcap, _ = tls_capture
    query = kfl.compile('tls and request.sni.endsWith(".internal")')
    chosen = {int(i["dst"]["port"]) for i in tls_items(pcap).values() if query.match(i)}
    by_tshark = {port for port, hs in tshark_handshakes(pcap).items() if hs["c_sni"].endswith(".internal")}
    assert chosen == by_tshark == {PY, PY12, REFUSED, OSSL12}


@pytest.mark.live
def test_client_hello_split_over_two_segments(tmp_path: Path) -> None:
    pcap = tmp_path / "split.pcap"
    record_traffic(pcap, tmp_path, split=True)
    segments = tshark_rows(pcap, "tls.handshake.type == 1", ["tcp.dstport", "tcp.segment.count"])
    split = {int(port) for port, count in segments if count and int(count) >= 2}
    assert split == {PY, PY12, REFUSED}, segments
    ours, theirs = tls_items(pcap), tshark_handshakes(pcap)
    assert sorted(ours) == sorted(theirs)
    for port in split:
        check_against_tshark(ours[port], theirs[port])


def _streams(pcap: Path) -> list[tuple[list[tuple[int, bytes]], int]]:
    """Each TCP connection's payloads `(direction, bytes)` in capture order, and its server port."""
    from scapy.all import TCP, rdpcap

    conns: dict[tuple, list[tuple[int, bytes]]] = {}
    for pkt in rdpcap(str(pcap)):
        if TCP in pkt and bytes(pkt[TCP].payload):
            tcp = pkt[TCP]
            server = tcp.sport if tcp.sport in SNI else tcp.dport
            client = tcp.dport if server == tcp.sport else tcp.sport
            conns.setdefault((client, server), []).append((int(tcp.sport == server), bytes(tcp.payload)))
    return [(events, key[1]) for key, events in conns.items()]


def _dissect(events: list[tuple[int, bytes]], gap_at: int = -1) -> list[dict]:
    return dissect_events(events, 443, gap_at)


@pytest.mark.live
def test_truncated_and_fuzzed_handshakes_never_crash_and_count_errors(
        tls_capture: tuple[Path, dict[str, Path]]) -> None:
    pcap, _ = tls_capture
    rng = random.Random(12)
    errors = 0
    for events, _port in _streams(pcap):
        flat = [(d, data[i:i + 7]) for d, data in events for i in range(0, len(data), 7)]  # 7-byte segments
        for cut in range(1, len(flat), max(1, len(flat) // 40)):  # the stream ends at `cut`
            items = _dissect(flat[:cut])
            assert len(items) == 1
            check_item(items[0])
            errors += "error" in items[0]
        for gap in range(0, min(len(flat), 200), 5):  # bytes lost at `gap`
            items = _dissect(flat, gap_at=gap)
            assert len(items) <= 1
            for item in items:
                check_item(item)
        for _ in range(30):  # flipped bytes
            mutated = [(d, bytes(b ^ rng.randrange(256) if rng.random() < 0.02 else b for b in data))
                       for d, data in events]
            for item in _dissect(mutated):
                check_item(item)
    assert errors > 0


@pytest.mark.parametrize("pcap", [p for p in sample_pcaps() if "mixed" in p.name], ids=lambda p: p.name)
def test_tls_items_on_sample_captures_equal_tshark(pcap: Path) -> None:
    """Real-world ClientHellos (browsers, Android apps, GREASE): per connection SNI and JA3 as tshark."""
    fields = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport",
              "tls.handshake.extensions_server_name", "tls.handshake.ja3", "tls.handshake.ja3_full"]
    theirs: dict = {}
    for row in tshark_rows(pcap, "tls.handshake.type == 1", fields, check=False):
        theirs.setdefault(key(row[0] or row[1], row[2], row[3] or row[4], row[5]), tuple(row[6:]))
    ours = {key(i["src"]["ip"], i["src"]["port"], i["dst"]["ip"], i["dst"]["port"]):
            (i["request"]["sni"], i["request"]["ja3"], i["request"]["ja3Full"])
            for i in sample_items(pcap.name) if i["protocol"]["name"] == "tls"}
    assert ours == theirs


def test_a_damaged_certificate_is_an_item_field_not_a_crash(tmp_path: Path) -> None:
    """Found by fuzzing: cryptography reads names lazily and raises KeyError for an unknown ASN.1
    string tag; the certificate is reported unreadable and the stream goes on."""
    from capture.dissect.tls import _certificate

    files = make_certificates(tmp_path, "10.0.0.2")
    der = x509.load_pem_x509_certificate(files["leaf"].read_bytes()).public_bytes(serialization.Encoding.DER)
    good = _certificate(der)
    assert "error" not in good and good["subject"]
    value = good["subject"].split("CN=", 1)[1].split(",")[0].encode()
    at = der.index(value) - 2  # the tag of the subject's CN string, then its length
    assert der[at] in (0x0C, 0x13)
    damaged = _certificate(der[:at] + bytes([0x29]) + der[at + 1:])
    assert damaged["error"].startswith(f"unreadable certificate ({len(der)} bytes): KeyError")
