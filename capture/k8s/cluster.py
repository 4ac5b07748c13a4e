"""The cluster as the resolver last saw it, and the identity of every address it knows.

`Cluster.apply(kind, event, obj, now_ns)` takes one watch event (or a listed object); it updates
the objects and indexes, recomputes the identity of every address the change touches and records
the differences in a `History`. Identities (reference: Kubeshark's src/dst resolution object):

- a pod IP -> the pod (and the service whose EndpointSlice lists it), mechanism `ip`;
- a host-network pod's node IP + port -> the pod, mechanism `ip-and-port`;
- a service ClusterIP, external or load-balancer IP -> the service (and its first slice), `ip`;
- an EndpointSlice address that is not a pod, with each port -> the service, `ip-and-port`;
- a node address -> the node (`name` is the node's name, no namespace), `ip`.

While the first lists come in, an object's identity is completed in place (a pod listed before
the slice that names its service has had that service all along); later changes of the same object
start a new interval now. When a new object takes an address over, the change is dated at the
object's creationTimestamp (when that is earlier than now) and a deletion at its
deletionTimestamp, so that history reads right even when events arrive late (after a reconnect or
a fresh list).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from capture.k8s import objects as o
from capture.k8s.history import History, key_of

KINDS = ("pods", "services", "endpointslices", "nodes")
Key = tuple[str, int | None]


class Cluster:
    def __init__(self, history: History | None = None) -> None:
        self.history = history if history is not None else History()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self._views: dict[str, dict[str, Any]] = {}  # uid -> the view items carry
        self._by_key: dict[str, dict[Key, set[str]]] = {k: defaultdict(set) for k in KINDS}
        self._slices_of_service: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._services_by_name: dict[tuple[str, str], str] = {}
        self._owner: dict[Key, str] = {}  # the uid whose identity a key has now
        self.syncing = True  # until the first list of every kind: changes of an owner amend its identity

    # ---- events ------------------------------------------------------------------------------

    def apply(self, kind: str, event: str, obj: dict[str, Any], now_ns: int) -> None:
        """One ADDED / MODIFIED / DELETED event of `kind` (one of KINDS)."""
        u = o.uid(obj)
        old = self.objects[kind].get(u)
        touched = self._keys(kind, old) if old is not None else set()
        if old is not None:
            self._unindex(kind, u, old)
        gone = event == "DELETED"
        if gone:
            self.objects[kind].pop(u, None)
            self._views.pop(u, None)
        else:
            self.objects[kind][u] = obj
            self._views[u] = _VIEWS[kind](obj)
            self._index(kind, u, obj)
            touched |= self._keys(kind, obj)
        self._refresh(touched, now_ns, deleted=obj if gone else None)

    def replace(self, kind: str, listed: list[dict[str, Any]], now_ns: int) -> None:
        """A fresh list of `kind`: objects missing from it are deleted, the others added/modified."""
        present = {o.uid(obj) for obj in listed}
        for u, obj in list(self.objects[kind].items()):
            if u not in present:
                self.apply(kind, "DELETED", obj, now_ns)
        for obj in listed:
            if self.objects[kind].get(o.uid(obj)) != obj:
                self.apply(kind, "ADDED", obj, now_ns)

    # ---- indexes -----------------------------------------------------------------------------

    def _own_keys(self, kind: str, obj: dict[str, Any]) -> set[Key]:
        if kind == "pods":
            if (obj.get("spec") or {}).get("hostNetwork"):
                return {(ip, port) for ip in o.pod_ips(obj) for port in o.pod_ports(obj)}
            return {(ip, None) for ip in o.pod_ips(obj)}
        if kind == "services":
            return {(ip, None) for ip in o.service_ips(obj)}
        if kind == "nodes":
            return {(ip, None) for ip in o.node_ips(obj)}
        keys: set[Key] = set()  # endpointslices: pod addresses by IP, other addresses by IP:port
        ports = [p["port"] for p in obj.get("ports") or [] if isinstance(p.get("port"), int)]
        for ep in obj.get("endpoints") or []:
            is_pod = (ep.get("targetRef") or {}).get("kind") == "Pod"
            for ip in ep.get("addresses") or []:
                if is_pod:
                    keys.add((ip, None))
                else:
                    keys.update((ip, port) for port in ports)
        return keys

    def _keys(self, kind: str, obj: dict[str, Any]) -> set[Key]:
        """The keys whose identity depends on `obj`."""
        keys = self._own_keys(kind, obj)
        if kind == "endpointslices":  # the service's own addresses show its first slice
            svc = self._services_by_name.get(o.slice_service(obj))
            if svc is not None:
                keys |= self._own_keys("services", self.objects["services"][svc])
        elif kind == "services":  # pods behind it show it
            md = obj.get("metadata") or {}
            for es in self._slices_of_service.get((md.get("namespace", ""), md.get("name", "")), ()):
                keys |= self._own_keys("endpointslices", self.objects["endpointslices"][es])
        return keys

    def _index(self, kind: str, u: str, obj: dict[str, Any]) -> None:
        for key in self._own_keys(kind, obj):
            self._by_key[kind][key].add(u)
        if kind == "endpointslices":
            self._slices_of_service[o.slice_service(obj)].add(u)
        elif kind == "services":
            md = obj.get("metadata") or {}
            self._services_by_name[(md.get("namespace", ""), md.get("name", ""))] = u

    def _unindex(self, kind: str, u: str, obj: dict[str, Any]) -> None:
        index = self._by_key[kind]
        for key in self._own_keys(kind, obj):
            owners = index.get(key)
            if owners is not None:
                owners.discard(u)
                if not owners:
                    del index[key]
        if kind == "endpointslices":
            self._slices_of_service[o.slice_service(obj)].discard(u)
        elif kind == "services":
            md = obj.get("metadata") or {}
            self._services_by_name.pop((md.get("namespace", ""), md.get("name", "")), None)

    # ---- identities --------------------------------------------------------------------------

    def _refresh(self, keys: set[Key], now_ns: int, deleted: dict[str, Any] | None) -> None:
        for key in keys:
            ident, owner = self.identity(key)
            before = self._owner.get(key)
            at = now_ns
            if owner != before:
                if owner is not None:
                    created = o.created_ns(self._owner_obj(owner))
                    if created is not None:
                        at = min(at, created)
                elif deleted is not None and o.uid(deleted) == before:
                    gone = o.deleted_ns(deleted)
                    if gone is not None:
                        at = min(at, gone)
                if owner is None:
                    self._owner.pop(key, None)
                else:
                    self._owner[key] = owner
            self.history.set(key_of(*key), ident, at, amend=self.syncing and owner == before)

    def _owner_obj(self, u: str) -> dict[str, Any] | None:
        for kind in KINDS:
            obj = self.objects[kind].get(u)
            if obj is not None:
                return obj
        return None

    def identity(self, key: Key) -> tuple[dict[str, Any] | None, str | None]:
        """(the identity of `key` now, the uid of the object that names it) or (None, None)."""
        pods = self._by_key["pods"].get(key)
        if pods:
            u = max(pods, key=self._pod_rank)
            service, es = self._service_of(key[0])
            return _ident(self._views[u], service, es, self._views[u],
                          "ip" if key[1] is None else "ip-and-port"), u
        services = self._by_key["services"].get(key) if key[1] is None else None
        if services:
            u = min(services)
            svc = self._views[u]
            md = self.objects["services"][u].get("metadata") or {}
            slices = sorted(self._slices_of_service.get((md.get("namespace", ""), md.get("name", "")), ()))
            return _ident(svc, svc, self._views[slices[0]] if slices else None, None, "ip"), u
        slices = self._by_key["endpointslices"].get(key) if key[1] is not None else None
        if slices:
            u = min(slices)
            es = self.objects["endpointslices"][u]
            svc_uid = self._services_by_name.get(o.slice_service(es))
            svc = self._views.get(svc_uid) if svc_uid else None
            name = svc["name"] if svc else o.slice_service(es)[1]
            ident = _ident(self._views[u], svc, self._views[u], None, "ip-and-port")
            ident["name"] = name
            return ident, u
        nodes = self._by_key["nodes"].get(key) if key[1] is None else None
        if nodes:
            u = min(nodes)
            node = self._views[u]
            ident = _ident({"name": node["name"], "namespace": ""}, None, None, None, "ip")
            ident["node"] = node
            return ident, u
        return None, None

    def _pod_rank(self, u: str) -> tuple[bool, int, str]:
        pod = self.objects["pods"][u]
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        return (not finished, o.created_ns(pod) or 0, u)

    def _service_of(self, ip: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The service (and slice) whose EndpointSlice lists the pod's IP."""
        for u in sorted(self._by_key["endpointslices"].get((ip, None), ())):
            es = self.objects["endpointslices"][u]
            svc_uid = self._services_by_name.get(o.slice_service(es))
            if svc_uid is not None:
                return self._views[svc_uid], self._views[u]
        return None, None


def _ident(named: dict[str, Any], service: dict[str, Any] | None, es: dict[str, Any] | None,
           pod: dict[str, Any] | None, mechanism: str) -> dict[str, Any]:
    return {"name": named["name"], "namespace": named["namespace"], "pod": pod, "service": service,
            "endpointSlice": es, "resolutionMechanism": mechanism}


_VIEWS = {"pods": o.pod_view, "services": o.service_view, "endpointslices": o.slice_view,
          "nodes": o.node_view}
