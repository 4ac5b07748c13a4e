"""The V8 side of one script, run as a child process: `python -m runtime.v8.child`.

Each script runs in its own process holding one `MiniRacer`, so nothing a script does inside V8 —
an endless loop in a C++ builtin, a fatal "out of memory" abort, a crash — can take the pipeline
down: the parent sees the pipe close and unloads that script. The child is deliberately dumb: it
creates an isolate, evaluates the code it is sent under a time budget, and answers. The frames it
reads and writes are described in `runtime/v8/protocol.py`.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any, BinaryIO

from runtime.v8.protocol import (
    HEAD,
    JS_ERROR,
    NO_ISOLATE,
    OK,
    OP_CALL,
    OP_NEW,
    OP_QUIT,
    OUT_OF_MEMORY,
    PARSE_ERROR,
    TIMED_OUT,
    TIMEOUT,
    read_exact,
)


def _evaluate(mr: object, payload: bytes, functions: dict[bytes, Any], op: int) -> tuple[int, str]:
    from py_mini_racer import JSTimeoutException
    from py_mini_racer._exc import JSEvalException, JSOOMException, JSParseException

    (timeout,) = TIMEOUT.unpack_from(payload)
    try:
        if op == OP_CALL:
            name, *args = payload[TIMEOUT.size :].split(b"\x00")
            fn = functions.get(name)
            if fn is None:
                fn = functions[name] = mr.eval(name.decode())  # type: ignore[attr-defined]
            result = fn(*(a.decode("utf-8") for a in args), timeout_sec=timeout or None)
        else:
            code = payload[TIMEOUT.size :].decode("utf-8")
            result = mr.eval(code, timeout_sec=timeout or None)  # type: ignore[attr-defined]
    except JSTimeoutException as exc:
        return TIMED_OUT, str(exc)
    except JSOOMException as exc:
        return OUT_OF_MEMORY, str(exc)
    except JSParseException as exc:
        return PARSE_ERROR, str(exc)
    except JSEvalException as exc:
        if mr.was_hard_memory_limit_reached():  # type: ignore[attr-defined]
            return OUT_OF_MEMORY, str(exc)
        return JS_ERROR, str(exc)
    if result is None or not isinstance(result, str | int | float | bool):
        return OK, ""
    return OK, str(result)


def _data_bytes() -> int:
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _cap_data(memory: int) -> None:
    """Cap the data segment at what the fresh isolate holds plus `memory` (0 = lift the cap).

    V8 reserves a few hundred MiB of address space when an isolate starts, so the cap counts from
    there; an allocation past it fails (an ArrayBuffer: a RangeError the script sees)."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = resource.RLIM_INFINITY if not memory else _data_bytes() + memory
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until `Q` or end of input; always closes the isolate."""
    from py_mini_racer import MiniRacer

    mr = None
    functions: dict[bytes, Any] = {}
    try:
        while True:
            head = read_exact(inp, HEAD.size)
            if not head:
                return
            size, op = HEAD.unpack(head)
            payload = read_exact(inp, size) if size else b""
            if op == OP_QUIT:
                return
            if op == OP_NEW:
                functions.clear()
                heap, _, memory = (payload or b"0").partition(b",")
                _cap_data(0)
                if mr is not None:
                    mr.close()
                mr = MiniRacer()
                if int(heap):
                    mr.set_hard_memory_limit(int(heap))
                _cap_data(int(memory or b"0"))
                status, text = OK, mr.v8_version
            elif mr is None:
                status, text = NO_ISOLATE, "no isolate"
            else:
                status, text = _evaluate(mr, payload, functions, op)
            data = text.encode("utf-8", "surrogatepass")
            out.write(HEAD.pack(len(data), status) + data)
            out.flush()
    finally:
        if mr is not None:
            mr.close()


def main() -> None:
    # ^C in a terminal (or a stop sent to the whole group) reaches this process too: the parent
    # stops cleanly and closes it; alone (the parent gone) it ends when its stdin does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Keep the protocol on a private descriptor: anything else that writes to fd 1 goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)
    out.close()
    # Leave without interpreter teardown: nothing V8 left behind can make the exit hang.
    os._exit(0)


if __name__ == "__main__":
    main()
