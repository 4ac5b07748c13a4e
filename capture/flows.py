"""`Capture`: decoded packets -> L4 streams (flow table), the stream store and TCP reassembly."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from struct import Struct

from capture.decode import SKIP_REASONS, Decoder
from capture.model import NS, CaptureConfig, Packet, StreamHandler, StreamMeta
from capture.store import HANDLER_OVERHEAD, PACKET_OVERHEAD, Record, StreamStore
from capture.tcp import TcpDirection

log = logging.getLogger("kflpcap.capture")

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
SEQ_ACK = Struct("!II")
SEQ = Struct("!I")
TICK_NS = NS  # retention/fragments are checked once per second of capture time
SWEEP_NS = 5 * NS  # idle flows are looked for every 5 s of capture time
HELD_SLACK = 1 << 20  # consume() adds held bytes to the store (and checks the budget) every MiB
HANDLER_FAILED = "stream handler failed"  # how a `warn` text about a dissector failure begins
RST_GRACE_NS = NS // 2  # a RST closes a dissected stream unless payload follows within this time

HandlerFactory = Callable[[StreamMeta], StreamHandler | None]
PacketListener = Callable[[str, int, int, int, bool], None]


class Flow(Record):
    """A stream: its store record plus flow-table state (TCP flags, reassembly, handler)."""

    __slots__ = ("asm", "base0", "base1", "ckey", "fin", "handler", "idle_ns", "rst", "seen", "skey", "tcp")

    def __init__(self, sid: str, l4: str, first_ts: int, linktype: int, cip: bytes, cport: int,
                 sip: bytes, sport: int, idle_ns: int, ckey: bytes, skey: bytes) -> None:
        Record.__init__(self, sid, l4, first_ts, linktype, cip, cport, sip, sport)
        self.tcp = l4 == "tcp"
        self.idle_ns = idle_ns
        self.ckey, self.skey = ckey, skey  # flow keys of client->server and server->client packets
        self.handler: StreamHandler | None = None
        self.asm: tuple[TcpDirection, TcpDirection] | None = None
        self.fin = self.seen = 0  # bits per direction: FIN seen, base sequence number known
        self.base0 = self.base1 = 0  # first sequence number seen per direction
        self.rst = False
        self.inline = self.inline and l4 == "udp"  # TCP: once both directions were seen


class Capture:
    """Feeds packets through decoding, the flow table, the store and the stream handlers.

    `packet_listener(stream_id, ts_ns, caplen, orig_len, fragmented)`, when set, is called once for
    every packet fed, in arrival order: `stream_id` is the stream it lands in, `""` for a packet
    that lands in none (ARP, ICMP, IGMP, non-IP, damaged, or an IP fragment still waiting for the
    rest of its datagram); `warn(text)` once per skip reason (default: logging).
    """

    def __init__(
        self, config: CaptureConfig | None = None, handler_factory: HandlerFactory | None = None
    ) -> None:
        self.config = cfg = config or CaptureConfig()
        self.handler_factory = handler_factory
        self.packet_listener: PacketListener | None = None
        self.warn: Callable[[str], None] = log.warning
        # set when another process dissects some streams (`capture.shares`): True for a stream whose
        # close on RST that process decides (whether it waits for data or ignores an out-of-window
        # RST depends on the dissector's reassembly); it tells through `close_reset`
        self.rst_elsewhere: Callable[[str], bool] | None = None
        self.store = StreamStore(cfg)
        self.store.on_drop = self._on_drop
        self.store.warn = lambda text: self.warn(text)
        self._decode = Decoder(cfg, self._skip).decode
        self._decoder = self._decode.__self__
        self._tcp_idle = int(cfg.tcp_idle_s * NS)
        self._udp_idle = int(cfg.udp_idle_s * NS)
        self._tcp: dict[bytes, Flow] = {}  # flow key (src + dst + ports) of either direction -> flow
        self._udp: dict[bytes, Flow] = {}
        self._live: dict[str, Flow] = {}  # flows not closed yet
        self._rst_pending: dict[str, tuple[Flow, int]] = {}  # RST seen, handler closes at the next tick
        self._next_id = 0
        self._now = 0
        self._next_tick = 0
        self._next_sweep = 0
        self._packets = 0
        self._streamed = 0
        self._skipped: dict[str, int] = {}
        self._stats = {
            "tcp_retransmitted": 0,
            "tcp_overlaps": 0,
            "tcp_out_of_order": 0,
            "tcp_ooo_overflow": 0,
            "tcp_gaps": 0,
            "tcp_gap_bytes": 0,
            "tcp_snaplen_gap_bytes": 0,
            "tcp_rst_ignored": 0,
            "tcp_rst_overridden": 0,
            "handler_errors": 0,
        }
        self._cap = cfg.stream_cap_bytes
        self._budget = cfg.budget_bytes

    # -- public surface -------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        c: dict[str, int] = {
            "packets_read": self._packets,
            "packets_streamed": self._streamed,
            "packets_skipped": sum(self._skipped.values()),
            "ip_fragments": self._decoder.fragmented_packets,
            "streams": self._next_id,
            "streams_open": len(self._live),
        }
        c.update({f"skipped_{k}": v for k, v in sorted(self._skipped.items())})
        c.update(self._stats)
        c.update(self.store.counters)
        return c

    @property
    def now_ns(self) -> int:
        """The capture clock: the newest packet timestamp (or tick) seen so far."""
        return self._now

    def feed(self, ts_ns: int, linktype: int, data: bytes, orig_len: int) -> None:
        self.feed_packet((ts_ns, linktype, data, orig_len))

    def use_snaplens(self, source: object) -> None:
        """Take the snaplen per link type of a `PacketSource` (exports write it in their headers);
        `consume(source)` does it itself, callers that wrap the source or feed packets one by one
        call it."""
        snaplens = getattr(source, "snaplens", None)
        if snaplens is not None:
            self.store.snaplens = snaplens

    def consume(self, packets: Iterable[Packet]) -> None:
        """Feed every packet of an iterable (a `PacketSource`: its snaplens go to the store).

        Same result as `feed_packet` on each packet; the common case (a non-SYN/FIN/RST segment or a
        datagram of a known stream, Ethernet + IPv4/IPv6, within the caps, no tick due) runs inline
        with local variables, everything else goes through `feed_packet`. Counters are brought up
        to date at every tick (once per second of capture time) and at the end; the budget is
        checked every MiB of held packets.
        """
        self.use_snaplens(packets)
        feed = self.feed_packet
        tcp_get, udp_get = self._tcp.get, self._udp.get
        tcp_idle, udp_idle, cap, budget = self._tcp_idle, self._udp_idle, self._cap, self._budget
        store = self.store
        listener = self.packet_listener
        tcp_data, udp_data = self._tcp_data, self._udp_data
        fast = pending = 0  # packets and held bytes not yet added to the counters
        now, next_tick = self._now, self._next_tick
        try:
            for pkt in packets:
                ts, lt, data, wirelen = pkt
                if ts < next_tick and lt == 1 and len(data) >= 54:
                    if data[12] == 8 and data[13] == 0 and data[14] == 0x45 and not (
                        data[20] & 0x3F or data[21]
                    ):
                        proto = data[23]
                        off = 34
                        wlen = ((data[16] << 8) | data[17]) - 20
                        key = data[26:38]
                    elif data[12] == 0x86 and data[13] == 0xDD and len(data) >= 74:
                        proto = data[20]
                        off = 54
                        wlen = (data[18] << 8) | data[19]
                        key = data[22:58]
                    else:
                        proto = 0
                    if proto == 6 and wlen >= 20:
                        flags = data[off + 13]
                        flow = tcp_get(key)
                        if flow is not None and (flags & SYN or not flow.inline
                                                 or ts - flow.last_ts > tcp_idle):
                            flow = None
                    elif proto == 17 and wlen >= 8:
                        flow = udp_get(key)
                        if flow is not None and (not flow.inline or ts - flow.last_ts > udp_idle):
                            flow = None
                    else:
                        flow = None
                    if flow is not None:
                        n = len(data)
                        if flow.data_bytes + n <= cap and wirelen == n:
                            if ts > now:  # kept current: an item made below reads the clock
                                now = self._now = ts
                            fast += 1
                            store.seq = seq = self._packets + fast
                            if not flow.established and (
                                    wlen > 8 if proto != 6
                                    else flags & 0x16 == ACK or wlen > (data[off + 12] >> 4) << 2):
                                flow.established = True
                            flow.last_ts = ts
                            flow.datas.append(data)
                            flow.tss.append(ts)
                            flow.seqs.append(seq)
                            flow.data_bytes += n
                            pending += n + PACKET_OVERHEAD
                            if pending > HELD_SLACK:
                                store.held += pending
                                pending = 0
                                if store.held > budget:
                                    store.evict()
                            if listener is not None:
                                listener(flow.sid, ts, n, wirelen, False)
                            if flow.handler is not None:
                                d = 0 if key == flow.ckey else 1
                                try:
                                    if proto != 6:
                                        udp_data(flow, d, data, off, wlen, ts)
                                    elif flags & 0x17 != ACK or wlen != (data[off + 12] >> 4) << 2:
                                        tcp_data(flow, d, data, off, wlen, flags, ts)
                                    else:  # a bare ACK: only one past what the peer sent matters
                                        asm = flow.asm[d ^ 1]
                                        acked = SEQ.unpack_from(data, off + 8)[0]
                                        if asm.next is not None and asm.next != acked:
                                            asm.ack(acked, ts)
                                except Exception as exc:  # a dissector bug must not stop the capture
                                    self._handler_failed(flow, exc)
                            if proto == 6 and flags & 5:  # FIN or RST
                                self._tcp_flags(flow, 0 if key == flow.ckey else 1, flags, data, off, ts)
                            continue
                self._packets += fast
                self._streamed += fast
                store.held += pending
                fast = pending = 0
                if now > self._now:
                    self._now = now
                feed(pkt)
                now, next_tick = self._now, self._next_tick
        finally:
            self._packets += fast
            self._streamed += fast
            if now > self._now:
                self._now = now
            store.held += pending
            if store.held > budget:
                store.evict()

    def close_reset(self, stream_id: str, ts_ns: int) -> None:
        """The process that dissects the stream closed it on a RST at `ts_ns` (see `rst_elsewhere`)."""
        flow = self._live.get(stream_id)
        if flow is not None:
            self._close(flow, ts_ns, "rst")

    def tick(self, now_ns: int) -> None:
        """Advance the clock: idle timeouts, retention, fragment timeouts."""
        if now_ns > self._now:
            self._now = now_ns
        self._tick(self._now, sweep=True)

    def finish(self, now_ns: int | None = None) -> None:
        """End of input: close every open stream (handlers get `on_close(ts, "end")`)."""
        ts = self._now if now_ns is None else now_ns
        for flow, rst_ts in list(self._rst_pending.values()):
            self._close(flow, rst_ts, "rst")
        for flow in list(self._live.values()):
            self._close(flow, max(ts, flow.last_ts), "end")

    # -- hot path -------------------------------------------------------------------------------

    def feed_packet(self, pkt: Packet) -> None:
        ts, lt, data, wirelen = pkt
        self._packets += 1
        self.store.seq = self._packets
        if ts > self._now:
            self._now = ts
            if ts >= self._next_tick:
                self._tick(ts, sweep=ts >= self._next_sweep)
        # fast path: Ethernet + IPv4 (20-byte header, not a fragment) or IPv6 without extension headers;
        # the flow key is src + dst + ports, contiguous in the packet then
        proto = wlen = 0
        if lt == 1 and len(data) >= 42:
            et = (data[12] << 8) | data[13]
            if et == 0x0800:
                if data[14] == 0x45 and not (data[20] & 0x3F or data[21]):
                    proto = data[23]
                    off = 34
                    wlen = ((data[16] << 8) | data[17]) - 20
                    key = data[26:38]
            elif et == 0x86DD and len(data) >= 62:
                proto = data[20]
                off = 54
                wlen = (data[18] << 8) | data[19]
                key = data[22:58]
        frags = None
        buf = data
        if (proto != 6 and proto != 17) or wlen <= 0:
            listener = self.packet_listener
            held = self._decoder.fragmented_packets
            r = self._decode(pkt)
            if r is None:
                if listener is not None:
                    listener("", ts, len(data), wirelen, self._decoder.fragmented_packets != held)
                return
            proto, src, dst, buf, off, wlen, frags = r
            if len(buf) < off + 4:
                self._skip("truncated_tcp" if proto == 6 else "truncated_udp")
                if listener is not None:
                    listener("", ts, len(data), wirelen, frags is not None)
                return
            key = src + dst + buf[off : off + 4]
        if proto == 6:
            if len(buf) < off + 20:
                self._skip("truncated_tcp")
                if self.packet_listener is not None:
                    self.packet_listener("", ts, len(data), wirelen, frags is not None)
                return
            flags = buf[off + 13]
            flow = self._tcp.get(key)
            if (flow is None or flags & 0x12 == SYN or ts - flow.last_ts > self._tcp_idle
                    or flow.closed == "idle"):
                flow = self._tcp_lookup(flow, key, buf, off, flags, ts, lt)
            d = 0 if key == flow.ckey else 1
            if flow.seen != 3 and not flow.seen & (1 << d):
                flow.seen |= 1 << d
                if d:
                    flow.base1 = SEQ_ACK.unpack_from(buf, off + 4)[0]
                else:
                    flow.base0 = SEQ_ACK.unpack_from(buf, off + 4)[0]
                if flow.seen == 3 and not flow.closed:
                    flow.inline = flow.can_inline()
        else:
            if len(buf) < off + 8:
                self._skip("truncated_udp")
                if self.packet_listener is not None:
                    self.packet_listener("", ts, len(data), wirelen, frags is not None)
                return
            flow = self._udp.get(key)
            if flow is None or flow.closed or ts - flow.last_ts > self._udp_idle:
                flow = self._udp_lookup(flow, key, buf, off, ts, lt)
            d = 0 if key == flow.ckey else 1
        if not flow.established and (frags is not None or (
                wlen > 8 if proto != 6 else flags & 0x16 == ACK or wlen > (buf[off + 12] >> 4) << 2)):
            flow.established = True  # payload, or a handshake's ACK: out of the first eviction class
        if frags is None:
            self._streamed += 1
            flow.last_ts = ts
            if not flow.evicted:
                n = len(data)
                if flow.data_bytes + n <= self._cap:
                    if flow.inline and wirelen == n:
                        flow.datas.append(data)
                        flow.tss.append(ts)
                        flow.seqs.append(self._packets)
                    else:
                        flow.append(ts, lt, data, wirelen, self._packets)
                    flow.data_bytes += n
                    store = self.store
                    store.held += n + PACKET_OVERHEAD
                    if store.held > self._budget:
                        store.evict()
                else:
                    self.store.over_cap(flow, wirelen)
            else:
                self.store.lost_to_eviction(flow, wirelen)
            if self.packet_listener is not None:
                self.packet_listener(flow.sid, ts, len(data), wirelen, False)
        else:
            self._keep_fragments(flow, frags)
        if flow.handler is not None:
            try:
                if proto == 6:
                    self._tcp_data(flow, d, buf, off, wlen, flags, ts)
                else:
                    self._udp_data(flow, d, buf, off, wlen, ts)
            except Exception as exc:  # a dissector bug must not stop the capture
                self._handler_failed(flow, exc)
        if proto == 6 and flags & (FIN | RST):
            self._tcp_flags(flow, d, flags, buf, off, ts)

    # -- slow paths -----------------------------------------------------------------------------

    def _keep_fragments(self, flow: Flow, frags: list[Packet]) -> None:
        """Store the fragments of a datagram completed by the last of them (the packet being fed;
        the listener heard of the others when they came)."""
        store = self.store
        flow.datagrams += 1
        flow.fragments += len(frags)
        for ts, lt, data, wirelen in frags:
            self._streamed += 1
            flow.last_ts = max(flow.last_ts, ts)
            n = len(data)
            if flow.evicted:
                store.lost_to_eviction(flow, wirelen)
            elif flow.data_bytes + n <= self._cap:
                flow.append(ts, lt, data, wirelen, self._packets)
                flow.data_bytes += n
                store.held += n + PACKET_OVERHEAD
            else:
                store.over_cap(flow, wirelen)
        if self.packet_listener is not None:
            ts, _, data, wirelen = frags[-1]
            self.packet_listener(flow.sid, ts, len(data), wirelen, True)
        if store.held > self._budget:
            store.evict()

    def _tcp_lookup(self, flow: Flow | None, key: bytes, buf: bytes, off: int, flags: int, ts: int,
                    lt: int) -> Flow:
        """The stream of a TCP packet, or a new one (first packet, idle, tuple reused by a new SYN)."""
        if flow is not None:
            if flow.closed == "idle":
                pass
            elif ts - flow.last_ts > self._tcp_idle:
                self._close(flow, flow.last_ts, "idle")
            elif flags & 0x12 == SYN and self._reused(flow, key, buf, off):
                self._close(flow, ts, "rst" if flow.rst else "fin" if flow.fin else "idle")
            else:
                return flow
        sport = (buf[off] << 8) | buf[off + 1]
        dport = (buf[off + 2] << 8) | buf[off + 3]
        # the SYN sender is the client; else the higher (ephemeral) port; else the first sender
        client_is_src = not flags & ACK if flags & SYN else sport >= dport
        return self._open(self._tcp, "tcp", key, sport, dport, client_is_src, ts, lt)

    @staticmethod
    def _reused(flow: Flow, key: bytes, buf: bytes, off: int) -> bool:
        """A SYN from a side that already sent: a new connection if its ISN differs or FIN/RST was seen."""
        d = 0 if key == flow.ckey else 1
        if not flow.seen & (1 << d):
            return False
        base = flow.base1 if d else flow.base0
        return bool(flow.fin or flow.rst) or SEQ_ACK.unpack_from(buf, off + 4)[0] != base

    def _udp_lookup(self, flow: Flow | None, key: bytes, buf: bytes, off: int, ts: int, lt: int) -> Flow:
        if flow is not None and not flow.closed:
            self._close(flow, flow.last_ts, "idle")
        sport = (buf[off] << 8) | buf[off + 1]
        dport = (buf[off + 2] << 8) | buf[off + 3]
        return self._open(self._udp, "udp", key, sport, dport, sport >= dport, ts, lt)

    def _open(self, table: dict[bytes, Flow], l4: str, key: bytes, sport: int, dport: int,
              client_is_src: bool, ts: int, lt: int) -> Flow:
        n = self._next_id
        self._next_id = n + 1
        sid = ("%012d.pcap" if l4 == "tcp" else "%012d_udp.pcap") % n
        alen = (len(key) - 4) >> 1
        src, dst = key[:alen], key[alen : 2 * alen]
        rkey = dst + src + key[-2:] + key[-4:-2]
        idle = self._tcp_idle if l4 == "tcp" else self._udp_idle
        if client_is_src:
            flow = Flow(sid, l4, ts, lt, src, sport, dst, dport, idle, key, rkey)
        else:
            flow = Flow(sid, l4, ts, lt, dst, dport, src, sport, idle, rkey, key)
        self.store.add(flow)
        table[key] = table[rkey] = flow
        self._live[sid] = flow
        if self.handler_factory is not None:
            try:
                flow.handler = self.handler_factory(flow.meta)
            except Exception as exc:
                self._handler_failed(flow, exc)
            if flow.handler is not None:
                flow.handler_cost = HANDLER_OVERHEAD[l4]
                self.store.held += flow.handler_cost
                if flow.tcp:
                    max_ooo = self.config.ooo_max_bytes
                    flow.asm = (TcpDirection(flow.handler, 0, max_ooo, self._stats),
                                TcpDirection(flow.handler, 1, max_ooo, self._stats))
        return flow

    def _tcp_data(self, flow: Flow, d: int, buf: bytes, off: int, wlen: int, flags: int, ts: int) -> None:
        doff = (buf[off + 12] >> 4) << 2
        if doff < 20 or doff > wlen:
            self._skip_handler_only("bad_tcp_header")
            return
        seq, ack = SEQ_ACK.unpack_from(buf, off + 4)
        asm = flow.asm[d]  # type: ignore[index]
        if flags & SYN:
            asm.syn(seq)
            seq = (seq + 1) & 0xFFFFFFFF
        if flags & RST:
            return
        plen = wlen - doff
        if plen and flow.rst and self._rst_pending.pop(flow.sid, None) is not None:
            self._stats["tcp_rst_overridden"] += 1
        if plen or flags & FIN:
            asm.segment(seq, buf[off + doff : off + wlen], plen, ts, bool(flags & FIN))
        if flags & ACK:
            peer = flow.asm[1 - d]  # type: ignore[index]
            if peer.next is not None and peer.next != ack:  # else nothing to learn from it
                peer.ack(ack, ts)

    def _udp_data(self, flow: Flow, d: int, buf: bytes, off: int, wlen: int, ts: int) -> None:
        payload = buf[off + 8 : off + wlen]
        handler = flow.handler
        handler.on_data(d, payload, ts)  # type: ignore[union-attr]
        if wlen - 8 > len(payload):
            handler.on_gap(d, wlen - 8 - len(payload), ts)  # type: ignore[union-attr]

    def _tcp_flags(self, flow: Flow, d: int, flags: int, buf: bytes, off: int, ts: int) -> None:
        if flags & RST:
            flow.rst = True
            if flow.closed or (self.rst_elsewhere is not None and self.rst_elsewhere(flow.sid)):
                return
            if flow.asm is not None:
                expected = flow.asm[d].next
                if expected is not None and SEQ_ACK.unpack_from(buf, off + 4)[0] != expected:
                    self._stats["tcp_rst_ignored"] += 1  # out of window (RFC 5961): injected or stale
                    return
            if flow.asm is None:
                self._close(flow, ts, "rst")
            else:  # closed at the next tick unless data follows (an injected RST the peers ignored)
                self._rst_pending[flow.sid] = (flow, ts)
            return
        flow.fin |= 1 << d
        if flow.fin == 3 and not flow.closed:
            self._close(flow, ts, "fin")

    def _close(self, flow: Flow, ts: int, reason: str) -> None:
        if flow.closed:
            return
        flow.closed = reason
        if reason == "idle" or not flow.tcp:  # a new stream starts on the next packet
            flow.inline = False
        self._rst_pending.pop(flow.sid, None)
        self._live.pop(flow.sid, None)
        handler = flow.handler
        if handler is not None:
            flow.handler = None
            try:
                if flow.asm is not None:
                    flow.asm[0].flush(ts)
                    flow.asm[1].flush(ts)
                handler.on_close(ts, reason)
            except Exception as exc:
                self._handler_failed(flow, exc)
            flow.asm = None
            self._handler_gone(flow)
        self.store.closed(flow, ts, self._now)

    def _on_drop(self, flow: Record, what: str) -> None:
        assert isinstance(flow, Flow)
        self._close_handler(flow, "evicted")  # a live stream's packets were evicted, or it was dropped
        if what == "evicted":
            return
        self._live.pop(flow.sid, None)
        self._rst_pending.pop(flow.sid, None)
        table = self._tcp if flow.tcp else self._udp
        for key in (flow.ckey, flow.skey):
            if table.get(key) is flow:
                del table[key]

    def _close_handler(self, flow: Flow, reason: str) -> None:
        handler = flow.handler
        if handler is None:
            return
        flow.handler = None
        flow.asm = None
        try:
            handler.on_close(flow.last_ts, reason)
        except Exception as exc:
            self._handler_failed(flow, exc)
        self._handler_gone(flow)

    def _handler_gone(self, flow: Flow) -> None:
        """The stream's dissector is gone: its memory no longer counts against the store's budget."""
        self.store.held -= flow.handler_cost
        flow.handler_cost = 0

    def _handler_failed(self, flow: Flow, exc: Exception) -> None:
        self._stats["handler_errors"] += 1
        if self._stats["handler_errors"] == 1:
            self.warn(f"{HANDLER_FAILED} on {flow.sid}: {type(exc).__name__}: {exc} "
                      "(its stream is no longer dissected; further failures are only counted)")
        flow.handler = None
        flow.asm = None
        self._handler_gone(flow)

    def _tick(self, now: int, sweep: bool) -> None:
        self._next_tick = now + TICK_NS
        if self._rst_pending:
            for flow, ts in list(self._rst_pending.values()):
                if now - ts >= RST_GRACE_NS:
                    self._close(flow, ts, "rst")
        if sweep:
            self._next_sweep = now + SWEEP_NS
            for flow in list(self._live.values()):
                if now - flow.last_ts > flow.idle_ns:
                    self._close(flow, flow.last_ts, "idle")
            self._decoder.expire(now)
        self.store.advance(now)

    def _skip(self, reason: str) -> None:
        n = self._skipped.get(reason, 0)
        self._skipped[reason] = n + 1
        if n == 0:
            self.warn(f"skipping packets: {SKIP_REASONS.get(reason, reason)} "
                      f"(first at packet {self._packets}; counted as skipped_{reason})")

    def _skip_handler_only(self, reason: str) -> None:
        key = f"handler_{reason}"
        self._stats[key] = self._stats.get(key, 0) + 1


def print_warning(text: str) -> None:
    """A `Capture.warn` (and `PacketSource.on_warning`: an input read up to its damage) for
    command-line tools: one line on stderr."""
    print(f"kflpcap: warning: {text}", file=sys.stderr)


def print_error(text: str) -> None:
    """A `PacketSource.on_error` for command-line tools (an input that could not be read at all)."""
    print(f"kflpcap: error: {text}", file=sys.stderr)
