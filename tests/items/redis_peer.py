"""Redis traffic made with redis-py, run inside a test namespace: `python3 redis_peer.py IP PORT`.

Each scenario is one connection named by CLIENT SETNAME (or HELLO ... SETNAME) after the scenario,
once in RESP2 (`<name>2`) and once in RESP3 (`<name>3`). Prints one JSON line of what the client saw.
"""

from __future__ import annotations

import json
import sys

import redis

PIPELINED = 40
BINARY = b"a\r\nb\x00\xff$3\r\n"


def basic(r: redis.Redis) -> dict:
    r.set("user:1", "alice")
    r.set("bin", BINARY)
    r.hset("h", mapping={"a": "1", "b": "2"})
    seen = {"get": r.get("user:1").decode(), "missing": r.get("missing"), "hgetall": len(r.hgetall("h")),
            "type": r.type("h"), "bin": r.get("bin") == BINARY}
    try:
        r.incr("user:1")
    except redis.ResponseError as exc:
        seen["error"] = str(exc)
    try:
        r.execute_command("NOSUCHCMD", "x")
    except redis.ResponseError as exc:
        seen["unknown"] = str(exc)
    return seen


def pipeline(r: redis.Redis) -> dict:
    p = r.pipeline(transaction=False)
    for i in range(PIPELINED):
        p.set(f"p:{i}", f"v{i}")
        p.get(f"p:{i}")
    return {"replies": len(p.execute())}


def multi(r: redis.Redis) -> dict:
    r.set("counter", 1)
    p = r.pipeline(transaction=True)
    p.set("t:1", "x")
    p.incr("counter")
    p.incr("t:1")  # fails inside EXEC
    p.hgetall("h")
    return {"exec": [str(v) for v in p.execute(raise_on_error=False)]}


def pubsub(r: redis.Redis, publisher: redis.Redis) -> dict:
    ps = r.pubsub()
    ps.subscribe("news", "alerts")
    ps.psubscribe("metrics.*")
    got = [ps.get_message(timeout=2) for _ in range(3)]
    publisher.publish("news", "hello")
    publisher.publish("alerts", "fire")
    publisher.publish("metrics.cpu", "93")
    got += [ps.get_message(timeout=2) for _ in range(3)]
    ps.ping()
    got.append(ps.get_message(timeout=2))
    ps.unsubscribe()
    ps.punsubscribe()
    got += [ps.get_message(timeout=2) for _ in range(3)]
    conn = ps.connection
    conn.send_command("GET", "user:1")  # the same connection, out of subscribed mode
    got.append(conn.read_response())
    ps.close()
    return {"messages": [m.get("type") if isinstance(m, dict) else str(m) for m in got]}


def main(ip: str, port: str) -> None:
    out = {}
    for proto in (2, 3):
        def client(name: str, proto: int = proto) -> redis.Redis:
            return redis.Redis(host=ip, port=int(port), protocol=proto, client_name=f"{name}{proto}",
                               socket_timeout=10)
        for name, scenario in (("basic", basic), ("pipeline", pipeline), ("multi", multi)):
            with client(name) as r:
                out[f"{name}{proto}"] = scenario(r)
        with client("pubsub") as r, client("publisher") as publisher:
            out[f"pubsub{proto}"] = pubsub(r, publisher)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:])
