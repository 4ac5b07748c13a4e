"""TLS handshakes (a kflpcap extension; nothing is decrypted): one item per connection from the
plaintext ClientHello and the server's first flight.

`request` is the ClientHello (SNI, ALPN, offered versions, cipher suites, extensions, groups,
signature algorithms, JA3 and JA4 fingerprints); `response` is the ServerHello (chosen version,
cipher suite and ALPN, JA3S), with the server's certificate chain when the version is at most TLS
1.2 (TLS 1.3 encrypts it), or the alert that refused the handshake. Records may be split across TCP
segments and handshake messages across records. The item is emitted when the server's flight is
complete (TLS 1.2: ServerHelloDone; TLS 1.3: the ServerHello, since what follows is encrypted), on a
plaintext alert, or when the stream closes or loses bytes first (with an error). The dissector
claims a stream by content: its first bytes are a handshake record holding a ClientHello.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

from capture.dissect.base import CLAIM, MORE, REJECT, DissectConfig, Dissector, ItemFactory, error, protocol

_REF = "https://datatracker.ietf.org/doc/html/rfc8446"
HANDSHAKE, ALERT, CCS, APPDATA = 22, 21, 20, 23
MAX_RECORD = 18432 + 5  # TLSCiphertext limit (2^14 + 2048) with the header
MAX_MESSAGE = 1 << 20  # a handshake message longer than this is taken as garbage
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
_SUITES = """
0000=NULL_WITH_NULL_NULL 0001=RSA_WITH_NULL_MD5 0002=RSA_WITH_NULL_SHA
0003=RSA_EXPORT_WITH_RC4_40_MD5 0004=RSA_WITH_RC4_128_MD5 0005=RSA_WITH_RC4_128_SHA
0009=RSA_WITH_DES_CBC_SHA 000a=RSA_WITH_3DES_EDE_CBC_SHA 0016=DHE_RSA_WITH_3DES_EDE_CBC_SHA
0018=DH_anon_WITH_RC4_128_MD5 002c=PSK_WITH_NULL_SHA 002d=DHE_PSK_WITH_NULL_SHA
002e=RSA_PSK_WITH_NULL_SHA 002f=RSA_WITH_AES_128_CBC_SHA 0032=DHE_DSS_WITH_AES_128_CBC_SHA
0033=DHE_RSA_WITH_AES_128_CBC_SHA 0034=DH_anon_WITH_AES_128_CBC_SHA 0035=RSA_WITH_AES_256_CBC_SHA
0038=DHE_DSS_WITH_AES_256_CBC_SHA 0039=DHE_RSA_WITH_AES_256_CBC_SHA
003a=DH_anon_WITH_AES_256_CBC_SHA 003b=RSA_WITH_NULL_SHA256 003c=RSA_WITH_AES_128_CBC_SHA256
003d=RSA_WITH_AES_256_CBC_SHA256 0040=DHE_DSS_WITH_AES_128_CBC_SHA256
0041=RSA_WITH_CAMELLIA_128_CBC_SHA 0044=DHE_DSS_WITH_CAMELLIA_128_CBC_SHA
0045=DHE_RSA_WITH_CAMELLIA_128_CBC_SHA 0046=DH_anon_WITH_CAMELLIA_128_CBC_SHA
0067=DHE_RSA_WITH_AES_128_CBC_SHA256 006a=DHE_DSS_WITH_AES_256_CBC_SHA256
006b=DHE_RSA_WITH_AES_256_CBC_SHA256 006c=DH_anon_WITH_AES_128_CBC_SHA256
006d=DH_anon_WITH_AES_256_CBC_SHA256 0084=RSA_WITH_CAMELLIA_256_CBC_SHA
0087=DHE_DSS_WITH_CAMELLIA_256_CBC_SHA 0088=DHE_RSA_WITH_CAMELLIA_256_CBC_SHA
0089=DH_anon_WITH_CAMELLIA_256_CBC_SHA 008c=PSK_WITH_AES_128_CBC_SHA 008d=PSK_WITH_AES_256_CBC_SHA
0090=DHE_PSK_WITH_AES_128_CBC_SHA 0091=DHE_PSK_WITH_AES_256_CBC_SHA
0094=RSA_PSK_WITH_AES_128_CBC_SHA 0095=RSA_PSK_WITH_AES_256_CBC_SHA 009c=RSA_WITH_AES_128_GCM_SHA256
009d=RSA_WITH_AES_256_GCM_SHA384 009e=DHE_RSA_WITH_AES_128_GCM_SHA256
009f=DHE_RSA_WITH_AES_256_GCM_SHA384 00a2=DHE_DSS_WITH_AES_128_GCM_SHA256
00a3=DHE_DSS_WITH_AES_256_GCM_SHA384 00a6=DH_anon_WITH_AES_128_GCM_SHA256
00a7=DH_anon_WITH_AES_256_GCM_SHA384 00a8=PSK_WITH_AES_128_GCM_SHA256
00a9=PSK_WITH_AES_256_GCM_SHA384 00aa=DHE_PSK_WITH_AES_128_GCM_SHA256
00ab=DHE_PSK_WITH_AES_256_GCM_SHA384 00ac=RSA_PSK_WITH_AES_128_GCM_SHA256
00ad=RSA_PSK_WITH_AES_256_GCM_SHA384 00ae=PSK_WITH_AES_128_CBC_SHA256
00af=PSK_WITH_AES_256_CBC_SHA384 00b0=PSK_WITH_NULL_SHA256 00b1=PSK_WITH_NULL_SHA384
00b2=DHE_PSK_WITH_AES_128_CBC_SHA256 00b3=DHE_PSK_WITH_AES_256_CBC_SHA384
00b4=DHE_PSK_WITH_NULL_SHA256 00b5=DHE_PSK_WITH_NULL_SHA384 00b6=RSA_PSK_WITH_AES_128_CBC_SHA256
00b7=RSA_PSK_WITH_AES_256_CBC_SHA384 00b8=RSA_PSK_WITH_NULL_SHA256 00b9=RSA_PSK_WITH_NULL_SHA384
00ba=RSA_WITH_CAMELLIA_128_CBC_SHA256 00bd=DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256
00be=DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256 00bf=DH_anon_WITH_CAMELLIA_128_CBC_SHA256
00c0=RSA_WITH_CAMELLIA_256_CBC_SHA256 00c3=DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256
00c4=DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256 00c5=DH_anon_WITH_CAMELLIA_256_CBC_SHA256
00ff=EMPTY_RENEGOTIATION_INFO_SCSV 1301=AES_128_GCM_SHA256 1302=AES_256_GCM_SHA384
1303=CHACHA20_POLY1305_SHA256 1304=AES_128_CCM_SHA256 1305=AES_128_CCM_8_SHA256 5600=FALLBACK_SCSV
c006=ECDHE_ECDSA_WITH_NULL_SHA c007=ECDHE_ECDSA_WITH_RC4_128_SHA
c009=ECDHE_ECDSA_WITH_AES_128_CBC_SHA c00a=ECDHE_ECDSA_WITH_AES_256_CBC_SHA
c010=ECDHE_RSA_WITH_NULL_SHA c011=ECDHE_RSA_WITH_RC4_128_SHA c012=ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
c013=ECDHE_RSA_WITH_AES_128_CBC_SHA c014=ECDHE_RSA_WITH_AES_256_CBC_SHA c015=ECDH_anon_WITH_NULL_SHA
c018=ECDH_anon_WITH_AES_128_CBC_SHA c019=ECDH_anon_WITH_AES_256_CBC_SHA
c01d=SRP_SHA_WITH_AES_128_CBC_SHA c01e=SRP_SHA_RSA_WITH_AES_128_CBC_SHA
c01f=SRP_SHA_DSS_WITH_AES_128_CBC_SHA c020=SRP_SHA_WITH_AES_256_CBC_SHA
c021=SRP_SHA_RSA_WITH_AES_256_CBC_SHA c022=SRP_SHA_DSS_WITH_AES_256_CBC_SHA
c023=ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 c024=ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
c027=ECDHE_RSA_WITH_AES_128_CBC_SHA256 c028=ECDHE_RSA_WITH_AES_256_CBC_SHA384
c02b=ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 c02c=ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
c02f=ECDHE_RSA_WITH_AES_128_GCM_SHA256 c030=ECDHE_RSA_WITH_AES_256_GCM_SHA384
c035=ECDHE_PSK_WITH_AES_128_CBC_SHA c036=ECDHE_PSK_WITH_AES_256_CBC_SHA
c037=ECDHE_PSK_WITH_AES_128_CBC_SHA256 c038=ECDHE_PSK_WITH_AES_256_CBC_SHA384
c039=ECDHE_PSK_WITH_NULL_SHA c03a=ECDHE_PSK_WITH_NULL_SHA256 c03b=ECDHE_PSK_WITH_NULL_SHA384
c050=RSA_WITH_ARIA_128_GCM_SHA256 c051=RSA_WITH_ARIA_256_GCM_SHA384
c052=DHE_RSA_WITH_ARIA_128_GCM_SHA256 c053=DHE_RSA_WITH_ARIA_256_GCM_SHA384
c056=DHE_DSS_WITH_ARIA_128_GCM_SHA256 c057=DHE_DSS_WITH_ARIA_256_GCM_SHA384
c05c=ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256 c05d=ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384
c060=ECDHE_RSA_WITH_ARIA_128_GCM_SHA256 c061=ECDHE_RSA_WITH_ARIA_256_GCM_SHA384
c06a=PSK_WITH_ARIA_128_GCM_SHA256 c06b=PSK_WITH_ARIA_256_GCM_SHA384
c06c=DHE_PSK_WITH_ARIA_128_GCM_SHA256 c06d=DHE_PSK_WITH_ARIA_256_GCM_SHA384
c06e=RSA_PSK_WITH_ARIA_128_GCM_SHA256 c06f=RSA_PSK_WITH_ARIA_256_GCM_SHA384
c072=ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256 c073=ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384
c076=ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256 c077=ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384
c094=PSK_WITH_CAMELLIA_128_CBC_SHA256 c095=PSK_WITH_CAMELLIA_256_CBC_SHA384
c096=DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256 c097=DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384
c098=RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256 c099=RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384
c09a=ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256 c09b=ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384
c09c=RSA_WITH_AES_128_CCM c09d=RSA_WITH_AES_256_CCM c09e=DHE_RSA_WITH_AES_128_CCM
c09f=DHE_RSA_WITH_AES_256_CCM c0a0=RSA_WITH_AES_128_CCM_8 c0a1=RSA_WITH_AES_256_CCM_8
c0a2=DHE_RSA_WITH_AES_128_CCM_8 c0a3=DHE_RSA_WITH_AES_256_CCM_8 c0a4=PSK_WITH_AES_128_CCM
c0a5=PSK_WITH_AES_256_CCM c0a6=DHE_PSK_WITH_AES_128_CCM c0a7=DHE_PSK_WITH_AES_256_CCM
c0a8=PSK_WITH_AES_128_CCM_8 c0a9=PSK_WITH_AES_256_CCM_8 c0aa=PSK_DHE_WITH_AES_128_CCM_8
c0ab=PSK_DHE_WITH_AES_256_CCM_8 c0ac=ECDHE_ECDSA_WITH_AES_128_CCM c0ad=ECDHE_ECDSA_WITH_AES_256_CCM
c0ae=ECDHE_ECDSA_WITH_AES_128_CCM_8 c0af=ECDHE_ECDSA_WITH_AES_256_CCM_8
cca8=ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 cca9=ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
ccaa=DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 ccab=PSK_WITH_CHACHA20_POLY1305_SHA256
ccac=ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 ccad=DHE_PSK_WITH_CHACHA20_POLY1305_SHA256
ccae=RSA_PSK_WITH_CHACHA20_POLY1305_SHA256
"""
CIPHER_SUITES = {int(code, 16): f"TLS_{name}" for code, name in (e.split("=") for e in _SUITES.split())}
GROUPS = {0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1", 0x001D: "x25519", 0x001E: "x448",
          0x001A: "brainpoolP256r1", 0x001B: "brainpoolP384r1", 0x001C: "brainpoolP512r1",
          0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096", 0x0103: "ffdhe6144",
          0x0104: "ffdhe8192", 0x11EC: "X25519MLKEM768", 0x6399: "X25519Kyber768Draft00"}
SIGNATURES = {0x0201: "rsa_pkcs1_sha1", 0x0203: "ecdsa_sha1", 0x0401: "rsa_pkcs1_sha256",
              0x0501: "rsa_pkcs1_sha384", 0x0601: "rsa_pkcs1_sha512", 0x0403: "ecdsa_secp256r1_sha256",
              0x0503: "ecdsa_secp384r1_sha384", 0x0603: "ecdsa_secp521r1_sha512",
              0x0804: "rsa_pss_rsae_sha256", 0x0805: "rsa_pss_rsae_sha384", 0x0806: "rsa_pss_rsae_sha512",
              0x0807: "ed25519", 0x0808: "ed448", 0x0809: "rsa_pss_pss_sha256", 0x080A: "rsa_pss_pss_sha384",
              0x080B: "rsa_pss_pss_sha512"}
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
          40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
          44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
          47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
          51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
          86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
          110: "unsupported_extension", 112: "unrecognized_name", 115: "unknown_psk_identity",
          116: "certificate_required", 120: "no_application_protocol"}
WEAK = ("_RC4_", "_DES_", "_3DES_", "_NULL_", "_EXPORT", "_anon_", "_MD5")
_protocols: dict[str, dict[str, Any]] = {}


def tls_protocol(version: str) -> dict[str, Any]:
    """The `protocol` object of a handshake that negotiated (or offered at most) `version`."""
    proto = _protocols.get(version)
    if proto is None:
        proto = _protocols[version] = protocol(
            "tls", version.rpartition(" ")[2], "TLS", "Transport Layer Security (handshake)", "tls", "tcp",
            ["443"], 1, _REF)
    return proto


def grease(value: int) -> bool:
    """A GREASE value (RFC 8701): 0x?a?a with both bytes equal."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def version_name(value: int) -> str:
    return VERSIONS.get(value, f"0x{value:04x}")


def _named(table: dict[int, str], values: list[int]) -> list[str]:
    return [table.get(v) or f"0x{v:04x}" for v in values]


class _Short(Exception):
    """A length field points past the end of its message."""


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise _Short(f"{n} bytes needed at offset {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vec(self, size_len: int) -> _Reader:
        return _Reader(self.take(int.from_bytes(self.take(size_len), "big")))

    def u16s(self) -> list[int]:
        raw = self.take(len(self.data) - self.pos)
        return list(struct.unpack(f"!{len(raw) // 2}H", raw[:len(raw) & ~1]))

    def left(self) -> bool:
        return self.pos < len(self.data)


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    if not r.left():
        return []
    ext = r.vec(2)
    out = []
    while ext.left():
        kind = ext.u16()
        out.append((kind, ext.vec(2).data))
    return out


def _alpn(data: bytes) -> list[str]:
    r = _Reader(data).vec(2)
    names = []
    while r.left():
        names.append(r.vec(1).data.decode("latin-1"))
    return names


def client_hello(body: bytes, record_version: int) -> dict[str, Any]:
    """The `request` of a ClientHello message body; raises `_Short` when it is cut or malformed."""
    r = _Reader(body)
    legacy = r.u16()
    r.take(32)  # random
    r.vec(1)  # session id
    ciphers = [c for c in r.vec(2).u16s() if not grease(c)]
    r.vec(1)  # compression methods
    ext = _extensions(r)
    types = [k for k, _ in ext if not grease(k)]
    sni, alpn, versions, groups, points, sigs = "", [], [], [], [], []
    for kind, data in ext:
        if kind == 0 and data:
            names = _Reader(data).vec(2)
            while names.left():
                name_type = names.u8()
                host = names.vec(2).data
                if name_type == 0 and not sni:
                    sni = host.decode("latin-1")
        elif kind == 16:
            alpn = _alpn(data)
        elif kind == 43:
            versions = [v for v in _Reader(data).vec(1).u16s() if not grease(v)]
        elif kind == 10:
            groups = [g for g in _Reader(data).vec(2).u16s() if not grease(g)]
        elif kind == 11:
            points = list(_Reader(data).vec(1).data)
        elif kind == 13:
            sigs = [s for s in _Reader(data).vec(2).u16s() if not grease(s)]
    top = max(versions) if versions else legacy
    ja3_full = ",".join([str(legacy), "-".join(map(str, ciphers)), "-".join(map(str, types)),
                         "-".join(map(str, groups)), "-".join(map(str, points))])
    ja4, ja4_raw = _ja4(top, bool(sni), ciphers, types, alpn, sigs)
    return {
        "type": "ClientHello",
        "recordVersion": f"0x{record_version:04x}",
        "legacyVersion": f"0x{legacy:04x}",
        "supportedVersions": [version_name(v) for v in versions],
        "maxVersion": version_name(top),
        "sni": sni,
        "alpn": alpn,
        "cipherSuites": _named(CIPHER_SUITES, ciphers),
        "cipherSuitesCount": len(ciphers),
        "extensions": types,
        "supportedGroups": _named(GROUPS, groups),
        "signatureAlgorithms": _named(SIGNATURES, sigs),
        "ja3": hashlib.md5(ja3_full.encode()).hexdigest(),
        "ja3Full": ja3_full,
        "ja4": ja4,
        "ja4Raw": ja4_raw,
    }


def _ja4(version: int, sni: bool, ciphers: list[int], types: list[int], alpn: list[str], sigs: list[int]
         ) -> tuple[str, str]:
    """JA4 (FoxIO) and its raw form, for TCP: `t`, version, SNI, counts, ALPN, two truncated hashes."""
    first = alpn[0] if alpn else ""
    if not first:
        chars = "00"
    elif first[0].isascii() and first[0].isalnum() and first[-1].isascii() and first[-1].isalnum():
        chars = first[0] + first[-1]
    else:
        raw = first.encode("latin-1").hex()
        chars = raw[0] + raw[-1]
    a = (f"t{JA4_VERSIONS.get(version, '00')}{'d' if sni else 'i'}{min(len(ciphers), 99):02d}"
         f"{min(len(types), 99):02d}{chars}")
    b = ",".join(sorted(f"{c:04x}" for c in ciphers))
    c = ",".join(sorted(f"{t:04x}" for t in types if t not in (0, 16)))
    if sigs:
        c += "_" + ",".join(f"{s:04x}" for s in sigs)
    return f"{a}_{_hash12(b)}_{_hash12(c)}", f"{a}_{b}_{c}"


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def server_hello(body: bytes) -> tuple[dict[str, Any], bool]:
    """The `response` of a ServerHello message body, and whether it is a HelloRetryRequest."""
    r = _Reader(body)
    legacy = r.u16()
    retry = r.take(32) == HRR_RANDOM
    r.vec(1)  # session id
    cipher = r.u16()
    r.u8()  # compression method
    ext = _extensions(r)
    chosen, alpn = legacy, ""
    for kind, data in ext:
        if kind == 43 and len(data) == 2:
            chosen = int.from_bytes(data, "big")
        elif kind == 16:
            names = _alpn(data)
            alpn = names[0] if names else ""
    types = [k for k, _ in ext]
    name = CIPHER_SUITES.get(cipher) or f"0x{cipher:04x}"
    ja3s_full = f"{legacy},{cipher},{'-'.join(map(str, types))}"
    version = version_name(chosen)
    security = [f"deprecated version {version}"] if chosen < 0x0303 else []
    if any(w in name for w in WEAK):
        security.append(f"weak cipher {name}")
    return {
        "type": "ServerHello",
        "version": version,
        "cipherSuite": name,
        "cipherSuiteCode": f"0x{cipher:04x}",
        "alpn": alpn,
        "extensions": types,
        "ja3s": hashlib.md5(ja3s_full.encode()).hexdigest(),
        "ja3sFull": ja3s_full,
        "security": security,
    }, retry


def certificates(body: bytes) -> list[dict[str, Any]]:
    """The chain of a (TLS ≤ 1.2) Certificate message, leaf first."""
    entries = _Reader(body).vec(3)
    chain = []
    while entries.left():
        chain.append(_certificate(entries.vec(3).data))
    return chain


@lru_cache(maxsize=512)
def _certificate(der: bytes) -> dict[str, Any]:
    """A certificate's fields; the same server certificate is parsed once and its dict shared by the
    items that show it (items are read-only)."""
    from cryptography import x509  # here: 20 ms of start-up that captures without TLS never need

    try:
        with warnings.catch_warnings():  # a damaged certificate is reported in the item, not on stderr
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
            serial = cert.serial_number
        out = {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "notBefore": _utc(cert.not_valid_before_utc),
            "notAfter": _utc(cert.not_valid_after_utc),
            "serial": f"{serial:x}",
            "san": [],
        }
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return out
        out["san"] = [str(v) for v in san.get_values_for_type(x509.DNSName)] + \
            [str(v) for v in san.get_values_for_type(x509.IPAddress)]
        return out
    except Exception as exc:  # cryptography parses lazily: damaged DER raises ValueError, KeyError
        # (an unknown string tag), TypeError … from any accessor; none may end the stream
        return {"error": f"unreadable certificate ({len(der)} bytes): {type(exc).__name__}: {exc}"}


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _looks_like_hello(data: bytes) -> int:
    """CLAIM when `data` starts a handshake record holding a ClientHello, MORE when it may."""
    head = (HANDSHAKE, 3, None, None, None, 1)
    for i, want in enumerate(head[:len(data)]):
        if want is not None and data[i] != want:
            return REJECT
    if len(data) >= 5 and data[2] > 4:
        return REJECT
    return CLAIM if len(data) >= 6 else MORE


class _Side:
    __slots__ = ("buf", "encrypted", "hs", "size", "ts")

    def __init__(self) -> None:
        self.buf = bytearray()  # record bytes not yet a whole record
        self.hs = bytearray()  # handshake bytes not yet a whole message
        self.size = 0  # record bytes taken
        self.encrypted = False  # after ChangeCipherSpec
        self.ts = -1  # time of the first byte


class Tls(Dissector):
    """The TLS handshake dissector of one TCP connection."""

    name: ClassVar[str] = "tls"
    layer4: ClassVar[tuple[str, ...]] = ("tcp",)
    ports: ClassVar[frozenset[int]] = frozenset({443})

    __slots__ = ("client", "done", "items", "request", "request_size", "response", "retry", "sides",
                 "server_ts")

    @classmethod
    def probe(cls, meta: Any, first: tuple[bytes, bytes], leader: int, final: bool,
              config: DissectConfig) -> int:
        if leader < 0:
            return MORE
        return _looks_like_hello(first[leader])

    def __init__(self, items: ItemFactory, config: DissectConfig) -> None:
        self.items = items
        self.sides = (_Side(), _Side())
        self.client = -1
        self.request: dict[str, Any] | None = None
        self.request_size = 0
        self.response: dict[str, Any] | None = None
        self.server_ts = 0
        self.retry = False
        self.done = False

    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        if self.done:
            return
        if self.client < 0:
            self.client = direction
        side = self.sides[direction]
        if side.ts < 0:
            side.ts = ts_ns
        buf = side.buf
        buf += data
        while len(buf) >= 5 and not self.done:
            kind, major, length = buf[0], buf[1], (buf[3] << 8) | buf[4]
            if kind not in (HANDSHAKE, ALERT, CCS, APPDATA) or major != 3 or length + 5 > MAX_RECORD:
                self._finish(ts_ns, error("dissection", f"not a TLS record (bytes {bytes(buf[:5]).hex()})"))
                return
            if len(buf) < length + 5:
                return
            payload = bytes(buf[5:length + 5])
            version = (buf[1] << 8) | buf[2]
            del buf[:length + 5]
            side.size += length + 5
            self._record(direction, kind, version, payload, ts_ns)

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        if not self.done:
            self._finish(ts_ns, error("dissection", f"{length} handshake bytes missing from the capture"))

    def on_close(self, ts_ns: int, reason: str) -> None:
        if not self.done:
            kind = "connection" if reason in ("fin", "rst") else "timeout"
            what = "the server's hello" if self.request is not None else "a whole ClientHello"
            self._finish(ts_ns, error(kind, f"stream ended ({reason}) before {what}"))

    def _record(self, direction: int, kind: int, version: int, payload: bytes, ts: int) -> None:
        side = self.sides[direction]
        server = direction != self.client
        if kind == CCS:
            # Before the ServerHello a ChangeCipherSpec is TLS 1.3's compatibility dummy (after a
            # HelloRetryRequest); after it, the server's CCS ends an abbreviated (resumed) handshake.
            if self.response is not None:
                side.encrypted = True
                if server:
                    self._finish(ts)
        elif kind == ALERT:
            if not side.encrypted and len(payload) == 2 and self.request is not None:
                level, code = payload
                alert = {"from": "server" if server else "client",
                         "level": "fatal" if level == 2 else "warning",
                         "code": code, "description": ALERTS.get(code, f"alert {code}")}
                if self.response is None:
                    self.response = {"type": "Alert"}
                    self.server_ts = ts
                self.response["alert"] = alert
                self._finish(ts)
        elif kind == APPDATA:
            if server and self.response is not None:
                self._finish(ts)
        elif not side.encrypted:
            hs = side.hs
            hs += payload
            while len(hs) >= 4 and not self.done:
                length = (hs[1] << 16) | (hs[2] << 8) | hs[3]
                if length > MAX_MESSAGE:
                    self._finish(ts, error("dissection", f"handshake message of {length} bytes"))
                    return
                if len(hs) < length + 4:
                    break
                body = bytes(hs[4:length + 4])
                msg_type = hs[0]
                del hs[:length + 4]
                self._message(server, msg_type, version, body, ts)

    def _message(self, server: bool, msg_type: int, version: int, body: bytes, ts: int) -> None:
        try:
            if not server:
                if msg_type == 1 and self.request is None:
                    self.request_size = self.sides[self.client].size
                    self.request = client_hello(body, version)
            elif msg_type == 2 and self.request is not None:
                response, retry = server_hello(body)
                if retry:
                    self.retry = True
                    return
                self.response = response
                response["helloRetryRequest"] = self.retry
                self.server_ts = ts
                if response["version"] == "TLS 1.3":
                    self._finish(ts)
            elif msg_type == 11 and self.response is not None:
                chain = certificates(body)
                if chain:
                    self.response["certificate"] = chain[0]
                    self.response["certificates"] = chain
            elif msg_type == 14 and self.response is not None:
                self._finish(ts)
        except _Short as exc:
            what = {2: "ServerHello", 11: "Certificate"}.get(msg_type, "message") if server else "ClientHello"
            self._finish(ts, error("dissection", f"malformed {what}: {exc}"))

    def _finish(self, ts: int, err: dict[str, str] | None = None) -> None:
        self.done = True
        for side in self.sides:
            side.buf.clear()
            side.hs.clear()
        client = self.sides[self.client] if self.client >= 0 else self.sides[0]
        request = self.request
        if request is None:
            request = {"type": "ClientHello"}
            self.request_size = client.size
            if err is None:
                err = error("dissection", "no ClientHello")
        body: dict[str, Any] = {"request": request}
        response = self.response
        version = request.get("maxVersion", "")
        response_size = 0
        elapsed = 0
        start = client.ts if client.ts >= 0 else ts
        if response is not None:
            body["response"] = response
            version = response.get("version", version)
            response_size = self.sides[self.client ^ 1].size
            elapsed = self.server_ts - start
        self.items.emit(tls_protocol(version), start, self.client == 1, body, self.request_size,
                        response_size, elapsed, err)
