"""The prelude and the host speak the protocol `runtime/v8/protocol.py` names: every key and signal
the prelude writes or reads is one the module defines, and the other way round."""

from __future__ import annotations

import re
from importlib import resources

from runtime.v8 import protocol

PRELUDE = resources.files("runtime.v8").joinpath("prelude.js").read_text(encoding="utf-8")


def _values(prefix: str) -> set[str]:
    return {v for k, v in vars(protocol).items() if k.startswith(prefix) and isinstance(v, str)}


def test_result_keys_are_the_named_ones() -> None:
    finish = PRELUDE[PRELUDE.index("function finish(") :]
    finish = finish[: finish.index("return JSON.stringify(r)")]
    keys = set(re.findall(r"\{ (\w+): OUT, (\w+): hooksDefined\(\) \}", finish)[0])
    keys |= set(re.findall(r"\br\.(\w+) =", finish))
    keys |= set(re.findall(r"\bout\.(\w+) = err", PRELUDE))
    assert keys == _values("RESULT_")


def test_batch_header_keys_are_the_named_ones() -> None:
    batch = PRELUDE[PRELUDE.index("    batch(head, body) {") :]
    batch = batch[: batch.index("return runEvents(0);")]
    assert set(re.findall(r"\bh\.(\w+)", batch)) == _values("BATCH_")


def test_signal_kinds_are_the_named_ones() -> None:
    kinds = set(re.findall(r"\{ k: \"(\w+)\"", PRELUDE))
    named = _values("SIGNAL_") - {protocol.SIGNAL_KIND, protocol.SIGNAL_AT}
    assert kinds == named
    assert set(protocol.REFILL_SIGNALS) <= kinds


def test_hook_letters_are_the_named_ones() -> None:
    body = PRELUDE[PRELUDE.index("function hooksDefined()") :]
    body = body[: body.index("}")]
    found = dict(re.findall(r'typeof G\.(\w+) === "function" \? "(\w)"', body))
    assert {letter: name for name, letter in found.items()} == protocol.HOOKS


def test_entry_points_exist_in_the_prelude() -> None:
    for name in (protocol.JS_BATCH.decode(), protocol.JS_REFILL.decode(), protocol.JS_LOADED,
                 protocol.js_resume("null", 0), protocol.js_yield_resume(0)):
        method = name.removeprefix("__kflpcap.").split("(")[0]
        assert re.search(rf"^    {method}\(", PRELUDE, re.M), method
