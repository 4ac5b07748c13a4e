"""A local Kubernetes API server for tests: list and watch of pods, services, endpointslices and
nodes, strict about the parts of the protocol an informer depends on.

- every request needs `Authorization: Bearer <token>` (401 otherwise);
- lists return `metadata.resourceVersion` and page with `limit`/`continue`;
- `?watch=1&resourceVersion=N` streams (chunked) every event after N, then waits for more; events
  older than the compaction point answer with an ERROR event carrying a 410 Status (as
  kube-apiserver does), a version that is not a number is a 400, a version from the future is an
  ERROR 504; `allowWatchBookmarks=true` gets BOOKMARK events; `timeoutSeconds` ends the watch;
- a watch without resourceVersion or with 0 is refused (400): an informer must list first;
- the test drives it: `add`/`modify`/`delete` objects, `compact()`, `drop_watches()`, `stop()` and
  `start()` again on the same port, and reads `requests` to check what the client asked.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PATHS = {
    "/api/v1/pods": ("pods", "PodList", "v1"),
    "/api/v1/services": ("services", "ServiceList", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("endpointslices", "EndpointSliceList",
                                                 "discovery.k8s.io/v1"),
    "/api/v1/nodes": ("nodes", "NodeList", "v1"),
}
TOKEN = "kflpcap-test-token"


class ApiServer:
    def __init__(self, token: str = TOKEN, bookmark_s: float = 0.2) -> None:
        self.token = token
        self.bookmark_s = bookmark_s
        self.rv = 100
        self.compacted = 0  # watches from a version below this get 410
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k, _l, _a in PATHS.values()}
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, kind, type, object)
        self.requests: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped to end every open watch

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ApiServer:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """The API server goes away: no new connections, open watches end."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.drop_watches()

    def drop_watches(self) -> None:
        with self.cond:
            self._generation += 1
            self.cond.notify_all()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, context: str = "test", token: str | None = None) -> Path:
        conf = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "local", "cluster": {"server": self.url}}],
            "users": [{"name": "reader", "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "local", "user": "reader"}}],
        }
        path.write_text(json.dumps(conf))
        return path

    # ---- objects -----------------------------------------------------------------------------

    def _record(self, kind: str, etype: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            self.rv += 1
            obj = copy.deepcopy(obj)
            md = obj.setdefault("metadata", {})
            md.setdefault("uid", str(uuid.uuid4()))
            md["resourceVersion"] = str(self.rv)
            key = f"{md.get('namespace', '')}/{md['name']}"
            if etype == "DELETED":
                self.objects[kind].pop(key, None)
            else:
                self.objects[kind][key] = obj
            self.events.append((self.rv, kind, etype, obj))
            self.cond.notify_all()
            return obj

    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self._record(kind, "ADDED", obj)

    def modify(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self._record(kind, "MODIFIED", obj)

    def delete(self, kind: str, namespace: str, name: str, deletion_timestamp: str | None = None) -> None:
        obj = copy.deepcopy(self.objects[kind][f"{namespace}/{name}"])
        if deletion_timestamp:
            obj["metadata"]["deletionTimestamp"] = deletion_timestamp
        self._record(kind, "DELETED", obj)

    def compact(self) -> None:
        """Forget the event history: a watch from any version seen so far gets 410 Gone."""
        with self.cond:
            self.rv += 1
            self.compacted = self.rv
            self.events.clear()

    def watches(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind and r["watch"]]

    def lists(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind and not r["watch"]]


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                              "reason": reason, "code": code})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            route = PATHS.get(url.path)
            watch = q.get("watch") in ("1", "true")
            api.requests.append({"path": url.path, "kind": route[0] if route else None, "watch": watch,
                                 "query": q, "auth": self.headers.get("Authorization")})
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                return self._status(401, "Unauthorized", "Unauthorized")
            if route is None:
                return self._status(404, "NotFound", f"the server could not find {url.path}")
            kind, list_kind, api_version = route
            if watch:
                return self._watch(kind, q)
            return self._list(kind, list_kind, api_version, q)

        def _list(self, kind: str, list_kind: str, api_version: str, q: dict[str, str]) -> None:
            with api.cond:
                items = sorted(api.objects[kind].items())
                rv = api.rv
            start = int(q.get("continue") or 0)
            limit = int(q.get("limit") or 0) or len(items) or 1
            page = [copy.deepcopy(v) for _k, v in items[start : start + limit]]
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
            self._json(200, {"kind": list_kind, "apiVersion": api_version, "metadata": meta, "items": page})

        def _chunk(self, event: dict[str, Any]) -> None:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, kind: str, q: dict[str, str]) -> None:
            text = q.get("resourceVersion", "")
            if not text.isdigit():
                return self._status(400, "BadRequest", f"invalid resourceVersion {text!r}")
            since = int(text)
            if since == 0:
                return self._status(400, "BadRequest", "this test server wants a list before a watch")
            timeout = float(q.get("timeoutSeconds") or 1800)
            bookmarks = q.get("allowWatchBookmarks") == "true"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.monotonic() + timeout
            with api.cond:
                generation = api._generation
            try:
                if since < api.compacted:
                    self._chunk({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
                        "message": f"too old resource version: {since} ({api.compacted})", "code": 410}})
                    return self._end()
                if since > api.rv:
                    self._chunk({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Timeout",
                        "message": f"Too large resource version: {since}, current: {api.rv}", "code": 504}})
                    return self._end()
                last = since
                last_bookmark = time.monotonic()
                while True:
                    with api.cond:
                        pending = [e for e in api.events if e[0] > last and e[1] == kind]
                        if not pending:
                            api.cond.wait(0.05)
                            pending = [e for e in api.events if e[0] > last and e[1] == kind]
                        if api._generation != generation:
                            return  # dropped: the connection just ends, no terminating chunk
                        current = api.rv
                    for rv, _kind, etype, obj in pending:
                        self._chunk({"type": etype, "object": obj})
                        last = rv
                    now = time.monotonic()
                    if bookmarks and now - last_bookmark >= api.bookmark_s and current > last:
                        marker = {"kind": "Pod", "metadata": {"resourceVersion": str(current)}}
                        self._chunk({"type": "BOOKMARK", "object": marker})
                        last = current
                        last_bookmark = now
                    if now >= deadline:
                        return self._end()
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                self.close_connection = True

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def pod(name: str, namespace: str, ip: str, created: str, labels: dict[str, str] | None = None,
        node: str = "node-1", host_network: bool = False, ports: list[int] | None = None) -> dict[str, Any]:
    """A Pod in the API's shape (with managedFields, as the API sends them)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "labels": labels or {},
                     "creationTimestamp": created,
                     "managedFields": [{"manager": "kubelet", "operation": "Update",
                                        "fieldsV1": {"f:status": {}}}]},
        "spec": {"nodeName": node, "hostNetwork": host_network, "serviceAccountName": "default",
                 "containers": [{"name": "main", "image": f"example/{name}:1",
                                 "ports": [{"containerPort": p, "protocol": "TCP"} for p in ports or []],
                                 "env": [{"name": "SECRET_LOOKING", "value": "x"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.50.1",
                   "startTime": created},
    }


def service(name: str, namespace: str, cluster_ip: str, port: int, created: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                     "creationTimestamp": created},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}], "selector": {"app": name}},
        "status": {"loadBalancer": {}},
    }


def endpoint_slice(service_name: str, namespace: str, port: int, pods: list[dict[str, Any]],
                   created: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": f"{service_name}-abcde", "namespace": namespace, "uid": str(uuid.uuid4()),
                     "creationTimestamp": created, "labels": {"kubernetes.io/service-name": service_name}},
        "ports": [{"name": "", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True},
                       "nodeName": p["spec"]["nodeName"],
                       "targetRef": {"kind": "Pod", "namespace": namespace, "name": p["metadata"]["name"],
                                     "uid": p["metadata"]["uid"]}} for p in pods],
    }


def node(name: str, ip: str, created: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": created,
                         "labels": {"kubernetes.io/hostname": name}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}]}}
