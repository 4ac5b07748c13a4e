"""The wire protocol between the pipeline and a script's V8 child, named in one place.

Two layers:

1. **Frames on the pipe** (`runtime/v8/process.py` writes requests, `runtime/v8/child.py` answers):
   `>IB` (payload length, op or status) then the payload. Requests: `OP_NEW` a fresh isolate
   (payload: `<heap limit>,<process memory limit>` in bytes as text, 0 = none), `OP_EVAL`
   evaluate (8-byte big-endian float timeout in seconds + UTF-8 code), `OP_CALL` call a global
   function with string arguments (timeout + NUL-separated UTF-8 name and arguments; a string
   argument crosses into V8 about twice as fast as the same text inside code), `OP_QUIT`.
   Answers: a status and UTF-8 text.

2. **JSON messages** between `runtime/v8/host.py` and the prelude (`runtime/v8/prelude.js`): the
   entry points the host calls (`JS_*`), the header of a batch (`BATCH_*`), the keys of the object
   every call returns (`RESULT_*`), the signals a call may raise (`SIGNAL_*`) and the letters that
   say which hooks a script defines (`HOOKS`). The keys are one or two letters because they cross
   the pipe with every batch; `tests/runtime/test_protocol.py` checks the prelude uses exactly these.

This module imports nothing beyond the standard library: the child process starts with it alone.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

# ---- frames ------------------------------------------------------------------------------------

HEAD = struct.Struct(">IB")
TIMEOUT = struct.Struct(">d")

OP_NEW = ord("N")
OP_EVAL = ord("E")
OP_CALL = ord("C")
OP_QUIT = ord("Q")

OK = 0
JS_ERROR = 1
TIMED_OUT = 2
OUT_OF_MEMORY = 3
PARSE_ERROR = 4
NO_ISOLATE = 5


def read_exact(f: BinaryIO, n: int) -> bytes:
    """Read exactly `n` bytes; an empty result means the other side closed the pipe."""
    parts = []
    while n:
        chunk = f.read(n)
        if not chunk:
            return b""
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


# ---- JSON messages -----------------------------------------------------------------------------

# prelude entry points (`__kflpcap.<name>`)
JS_BATCH = b"__kflpcap.batch"  # (header JSON, body: one item/packet line per event, "\x01"-joined)
JS_REFILL = b"__kflpcap.refill"  # (full body, bodies "1"/"0", fields "*"/"", resume index)
JS_LOADED = "__kflpcap.loaded()"


def js_resume(update_json: str, at: int) -> str:
    return f"__kflpcap.resume({update_json}, {int(at)})"


def js_yield_resume(at: int) -> str:
    return f"__kflpcap.resume(null, {int(at)})"


# the header of a batch
BATCH_KINDS = "k"  # one letter per event: "i" item, "p" packet
BATCH_UPDATE = "u"  # shared state: clock, jobs, running, dropped queries
BATCH_ANSWERS = "a"  # query id -> "0"/"1" per event (precomputed kfl.match answers)
BATCH_LEAN = "lean"  # no item text was sent (the script only forwards items)
BATCH_NO_BODIES = "nb"  # message bodies were left out
BATCH_PROJECTION = "pf"  # the top-level item fields sent (absent: all)
BATCH_TIMES = "tm"  # per event: the runtime clock (ms) when it was made (null: unknown)
BATCH_TICKS = "tk"  # the capture-second ticks between events: [[index of the next event, clock ms]]

# the object every call returns
RESULT_COMMANDS = "c"  # [[helper command name, args...], ...] to execute in order; ["@", i]: those
# after it came from event i's hook (or timers due by its time), ["T", k]: from timers due at tick k
RESULT_HOOKS = "h"  # letters of HOOKS the script defines
RESULT_SIGNAL = "s"  # a pending signal (below): answer it, then resume at signal["at"]
RESULT_YIELD = "y"  # the call handed back control after its time slice: resume at this index
RESULT_USED = "u"  # query ids the call consulted
RESULT_OPTIONS = "o"  # new wrapper option objects: id -> options
RESULT_TIMER = "t"  # the next setTimeout due, ms on the runtime clock
RESULT_JOB_ERROR = "x"  # a job's error text

# signals: SIGNAL_KIND says which
SIGNAL_KIND = "k"
SIGNAL_AT = "at"
SIGNAL_NEED = "need"  # the script read an item of a lean batch: send the text
SIGNAL_BODIES = "bodies"  # the script read a body left out: send them, always from now on
SIGNAL_FIELDS = "fields"  # the script read a field cut away: send every field from now on
SIGNAL_KFL = "kfl"  # an unknown KFL query ("q") on a batch item
SIGNAL_KFL_OBJECT = "kflobj"  # kfl.match(query "q", object JSON "j") on an object of the script's
SIGNAL_CALL = "call"  # a helper answering at once ("helper", "args"; the answer goes under "key")
REFILL_SIGNALS = (SIGNAL_NEED, SIGNAL_BODIES, SIGNAL_FIELDS)

HOOK_ITEM = "i"
HOOK_PACKET = "p"
HOOKS = {
    HOOK_ITEM: "onItemCaptured",
    HOOK_PACKET: "onPacketCaptured",
    "j": "onJobPassed",
    "f": "onJobFailed",
    "a": "onHubAction",
}
HOOK_LETTER = {name: letter for letter, name in HOOKS.items()}
