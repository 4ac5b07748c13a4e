"""Dissection spread over processes that share the streams of the same capture files.

Each worker process reads every packet and tracks every stream (so stream ids are the same
everywhere) and dissects the streams of its share (stream number k modulo n, see
`make_handler_factory`). It sends each item as a JSON line with the number of the packet being read
when the item was made and its stream number; merged on (packet, stream, emission) the shares give
the order one process makes them in. It also tells when a stream of its share closed on a RST (a
line `!<ts_ns> <stream id>`): whether a RST closes a stream at once, later or not at all depends on
the dissector's reassembly, which only that worker has. (`kflpcap run` gives its workers a store that holds no
packets: the process that merges keeps the stream store.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from struct import Struct
from typing import Any, BinaryIO

import orjson

from capture.model import CaptureConfig
from capture.names import NameTable
from capture.store import Record as StoreRecord

HEAD = Struct("<QQI")  # packet number, stream number, line length
PIPE_BYTES = 1 << 20  # slack between workers that run at different speeds

Match = Callable[[dict[str, Any]], bool] | None
Record = tuple[int, int, int, bytes]  # packet, stream, emission number in its share, JSON line


def stream_number(item: dict[str, Any]) -> int:
    return int(item["stream"][:12])


class Share:
    """A forked worker dissecting share `index` of `shares`; `records()` reads what it sends."""

    def __init__(self, pid: int, reader: BinaryIO, index: int) -> None:
        self.pid = pid
        self.reader = reader
        self.index = index
        self.status: int | None = None

    def records(self) -> Iterator[Record]:
        read = self.reader.read
        unpack = HEAD.unpack
        size = HEAD.size
        seq = 0
        while True:
            head = read(size)
            if len(head) < size:
                return
            packet, stream, length = unpack(head)
            line = read(length)
            if len(line) < length:  # the worker was stopped while it wrote
                return
            yield packet, stream, seq, line
            seq += 1

    def wait(self) -> int:
        """The worker's exit status (after its last record was read)."""
        if self.status is None:
            self.reader.close()
            self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.status

    def kill(self) -> None:
        """Stop the worker (the reader stopped early)."""
        if self.status is None:
            self.reader.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def fork_shares(paths: list[str], indices: range, shares: int, *, node: str | None, names: NameTable,
                config: CaptureConfig | None = None, match: Match = None,
                resets: bool = False) -> list[Share]:
    """Fork one worker per share in `indices` (of `shares`) over the capture files `paths` (not
    stdin: every worker reads the input again); with `resets`, workers also tell their streams'
    closes on RST. Call before any thread starts."""
    started: list[Share] = []
    try:
        for index in indices:
            rfd, wfd = os.pipe()
            with contextlib.suppress(OSError):  # F_SETPIPE_SZ: Linux only, capped by pipe-max-size
                import fcntl

                fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                for share in started:
                    share.reader.close()
                os._exit(_worker(paths, wfd, match, config, node, names, (index, shares), resets))
            os.close(wfd)
            started.append(Share(pid, os.fdopen(rfd, "rb", buffering=PIPE_BYTES), index))
    except BaseException:
        for share in started:
            share.kill()
        raise
    return started


def _worker(paths: list[str], wfd: int, match: Match, config: CaptureConfig | None, node: str | None,
            names: NameTable, shard: tuple[int, int], resets: bool) -> int:
    """One share, in the forked child: framed lines to `wfd`. Returns the child's exit status."""
    from capture.dissect_files import dissect_files

    try:
        # ^C reaches the whole group: the parent decides (it reads up to where it stopped, then ends
        # the workers with SIGTERM); alone, a worker ends at its first write once the parent is gone
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        position = [0]
        dumps = orjson.dumps
        pack = HEAD.pack
        with os.fdopen(wfd, "wb", buffering=PIPE_BYTES) as pipe:
            write = pipe.write

            def on_item(item: dict[str, Any]) -> None:
                if match is None or match(item):
                    line = dumps(item)
                    write(pack(position[0], stream_number(item), len(line)))
                    write(line)

            def on_closed(rec: StoreRecord) -> None:
                number = int(rec.sid[:12])
                if rec.closed == "rst" and number % shard[1] == shard[0]:
                    line = b"!%d %s" % (rec.close_ts, rec.sid.encode())
                    write(pack(position[0], number, len(line)))
                    write(line)

            source = dissect_files(paths, on_item, config=config, node=node, names=names, shard=shard,
                                   position=position, on_closed=on_closed if resets else None)
        return 2 if source.failed else 0
    except BrokenPipeError:
        return 0
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stderr.flush()

