#!/usr/bin/python3
"""kubesim judged by the real Python client (KUBE_API.md §8, P1-P7).

Usage: /usr/bin/python3 tests/acceptance/python_test.py /path/to/kubesim

Each check starts its own kubesim (--listen 127.0.0.1:0, --bookmark-interval
1s), runs under a watchdog alarm, and stops kubesim with SIGTERM; a non-zero
exit or a sanitizer report in kubesim's stderr fails that check.  Every
check prints "ok NAME ..." or "FAIL NAME: why" and the run ends with
"N passed, M failed"; the exit status is 1 if anything failed.  A missing
python3-kubernetes is a failure, never a skip.
"""

import datetime
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

try:
    import kubernetes
    from kubernetes import client, dynamic, watch
    from kubernetes.client.rest import ApiException
    IMPORT_ERROR = None
except Exception as e:  # noqa: BLE001 - any import failure is a failure
    IMPORT_ERROR = "%s: %s" % (type(e).__name__, e)

SCALE = float(os.environ.get("MCF_TEST_TIMEOUT_SCALE", "1") or "1")
START_DEADLINE = 20 * SCALE     # seconds to wait for "listening on"
CHECK_DEADLINE = 40 * SCALE     # watchdog per check
REQ_T = 10 * SCALE              # per-request timeout for the client
STOP_DEADLINE = 10 * SCALE      # SIGTERM -> exit

MILO_G = "resourcemanager.miloapis.com"
MILO_V = "v1alpha1"
PREFIX = "/apis/resourcemanager.miloapis.com/v1alpha1/projects/%s/control-plane"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "LeakSanitizer", "runtime error:")


class CheckFailed(Exception):
    pass


class Watchdog(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# ---- kubesim process ------------------------------------------------------

class Kubesim:
    """One kubesim child: started with --listen 127.0.0.1:0, its stderr
    captured in a temporary file (a pipe could fill up and block it)."""

    def __init__(self, binary, extra):
        self.binary = binary
        self.extra = list(extra)
        self.proc = None
        self.url = None
        self.errf = None

    def start(self):
        self.errf = tempfile.TemporaryFile()
        args = [self.binary, "--listen", "127.0.0.1:0"] + self.extra
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.errf)
        deadline = time.monotonic() + START_DEADLINE
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed("kubesim printed no 'listening on' line "
                                  "within %.0f s (got %r)" % (START_DEADLINE, buf))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise CheckFailed("kubesim closed stdout before listening "
                                  "(exit %s, got %r)" % (self.proc.poll(), buf))
            buf += chunk
        line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        if not m:
            raise CheckFailed("unexpected first stdout line %r" % line)
        self.url = m.group(1)
        return self.url

    def stderr_text(self):
        if self.errf is None:
            return ""
        self.errf.seek(0)
        return self.errf.read().decode("utf-8", "replace")

    def stop(self):
        """Terminates kubesim; returns a list of problems (empty if it exited
        0 without a sanitizer report)."""
        problems = []
        if self.proc is None:
            if self.errf is not None:
                self.errf.close()
                self.errf = None
            return problems
        if self.proc.poll() is not None:
            problems.append("kubesim had already exited (status %s) before "
                            "SIGTERM" % self.proc.returncode)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("kubesim ignored SIGTERM for %.0f s (killed)"
                                % STOP_DEADLINE)
        rc = self.proc.returncode
        if rc != 0 and not problems:
            problems.append("kubesim exited with status %s after SIGTERM" % rc)
        err = self.stderr_text()
        for mark in SANITIZER_MARKS:
            if mark in err:
                problems.append("kubesim stderr contains %r" % mark)
                break
        if problems:
            tail = err[-4000:]
            print("---- kubesim stderr (tail) ----\n%s\n---- end ----" % tail)
        self.proc.stdout.close()
        self.errf.close()
        self.errf = None
        self.proc = None
        return problems


# ---- raw HTTP helpers for /_sim/ -------------------------------------------

def http_json(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=REQ_T) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")


def sim_requests(url, since=0):
    st, body = http_json("GET", "%s/_sim/requests?since=%d" % (url, since))
    expect(st == 200 and isinstance(body, dict)
           and isinstance(body.get("items"), list),
           "GET /_sim/requests: %s %r" % (st, body))
    return body["items"]


def last_seq(url):
    items = sim_requests(url)
    return max([int(i.get("seq", 0)) for i in items] or [0])


def new_api(host):
    cfg = client.Configuration()
    cfg.host = host
    return client.ApiClient(cfg)


def api_error_body(e):
    try:
        return json.loads(e.body)
    except (TypeError, ValueError):
        return {}


def raw_get(api, path):
    """GET through the Python client, returning the JSON as sent."""
    r = api.call_api(path, "GET", header_params={"Accept": "application/json"},
                     _preload_content=False, _return_http_data_only=True,
                     _request_timeout=REQ_T)
    return json.loads(r.data)


def project_body(name, org="org1"):
    return {"apiVersion": "%s/%s" % (MILO_G, MILO_V), "kind": "Project",
            "metadata": {"name": name},
            "spec": {"ownerRef": {"kind": "Organization", "name": org}}}


# ---- P1: CoreV1Api create/read/patch/replace/delete ------------------------

def configmap_crud(api, url, ns, plane):
    """P1's sequence on configmaps through `api`; `plane` is the plane name
    kubesim must record for these requests ("" for the root)."""
    core = client.CoreV1Api(api)
    since = last_seq(url)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py1"),
                              data={"a": "1"})
    cm, st, _ = core.create_namespaced_config_map_with_http_info(
        ns, body, _request_timeout=REQ_T)
    expect(st == 201, "create: status %s, want 201" % st)
    expect(cm.metadata.name == "py1" and cm.data == {"a": "1"},
           "create: returned %r" % cm)
    expect(cm.metadata.resource_version and cm.metadata.uid,
           "create: no resourceVersion/uid in %r" % cm.metadata)

    got, st, _ = core.read_namespaced_config_map_with_http_info(
        "py1", ns, _request_timeout=REQ_T)
    expect(st == 200, "read: status %s, want 200" % st)
    expect(got.data == {"a": "1"} and
           got.metadata.resource_version == cm.metadata.resource_version,
           "read: got data %r rv %s, want {'a': '1'} rv %s" %
           (got.data, got.metadata.resource_version,
            cm.metadata.resource_version))
    stale = got

    p1, st, _ = core.patch_namespaced_config_map_with_http_info(
        "py1", ns, {"data": {"b": "2"}}, _request_timeout=REQ_T)
    expect(st == 200, "patch(dict): status %s, want 200" % st)
    expect(p1.data == {"a": "1", "b": "2"},
           "patch(dict) (strategic merge): data %r, want a=1,b=2" % p1.data)

    p2, st, _ = core.patch_namespaced_config_map_with_http_info(
        "py1", ns, [{"op": "add", "path": "/data/c", "value": "3"}],
        _request_timeout=REQ_T)
    expect(st == 200, "patch(list): status %s, want 200" % st)
    expect(p2.data == {"a": "1", "b": "2", "c": "3"},
           "patch(list) (JSON patch): data %r, want a,b,c" % p2.data)
    expect(int(p2.metadata.resource_version) > int(p1.metadata.resource_version)
           > int(cm.metadata.resource_version),
           "resourceVersions not increasing: %s %s %s" %
           (cm.metadata.resource_version, p1.metadata.resource_version,
            p2.metadata.resource_version))

    stale.data = {"z": "stale"}
    try:
        core.replace_namespaced_config_map("py1", ns, stale,
                                           _request_timeout=REQ_T)
        raise CheckFailed("replace with stale resourceVersion %s succeeded, "
                          "want 409" % stale.metadata.resource_version)
    except ApiException as e:
        b = api_error_body(e)
        expect(e.status == 409 and b.get("reason") == "Conflict" and
               "the object has been modified" in b.get("message", ""),
               "replace-stale: %s %s, want 409 Conflict 'the object has been "
               "modified...'" % (e.status, e.body))

    p2.data["d"] = "4"
    rep, st, _ = core.replace_namespaced_config_map_with_http_info(
        "py1", ns, p2, _request_timeout=REQ_T)
    expect(st == 200 and rep.data.get("d") == "4",
           "replace (fresh rv): status %s data %r" % (st, rep.data))

    try:
        core.read_namespaced_config_map("nope", ns, _request_timeout=REQ_T)
        raise CheckFailed("read of a missing configmap succeeded, want 404")
    except ApiException as e:
        b = api_error_body(e)
        expect(e.status == 404 and b.get("reason") == "NotFound" and
               b.get("message") == 'configmaps "nope" not found',
               "read-missing: %s %s, want 404 NotFound "
               "'configmaps \"nope\" not found'" % (e.status, e.body))

    s = core.delete_namespaced_config_map("py1", ns, _request_timeout=REQ_T)
    expect(isinstance(s, client.V1Status) and s.status == "Success",
           "delete: returned %r, want V1Status(status='Success')" % s)
    try:
        core.read_namespaced_config_map("py1", ns, _request_timeout=REQ_T)
        raise CheckFailed("configmap still readable after delete")
    except ApiException as e:
        expect(e.status == 404, "read after delete: %s, want 404" % e.status)

    # The wire: content types as §1.6 observed, and the plane kubesim
    # attributed the requests to.
    reqs = [r for r in sim_requests(url, since)
            if "/configmaps" in r.get("path", "")]
    patches = [r for r in reqs if r.get("method") == "PATCH"]
    expect([r.get("content_type") for r in patches] ==
           ["application/strategic-merge-patch+json",
            "application/json-patch+json"],
           "PATCH content types in /_sim/requests: %r" %
           [r.get("content_type") for r in patches])
    planes = sorted(set(r.get("plane") for r in reqs))
    expect(planes == [plane], "requests recorded for plane(s) %r, want [%r]"
           % (planes, plane))
    want_status = [201, 200, 200, 200, 409, 200, 404, 200, 404]
    expect([r.get("status") for r in reqs] == want_status,
           "statuses in /_sim/requests %r, want %r" %
           ([r.get("status") for r in reqs], want_status))


def check_p1(url):
    with new_api(url) as api:
        configmap_crud(api, url, "default", "")
    return "CoreV1Api create 201 / read / patch(dict) SMP / patch(list) " \
           "JSON patch / replace-stale 409 / read-missing 404 / delete Success"


def check_p1_project(url):
    with new_api(url) as api:
        custom = client.CustomObjectsApi(api)
        _, st, _ = custom.create_cluster_custom_object_with_http_info(
            MILO_G, MILO_V, "projects", project_body("p1"),
            _request_timeout=REQ_T)
        expect(st == 201, "create project p1: status %s" % st)
    purl = url + PREFIX % "p1"
    with new_api(purl) as papi:
        configmap_crud(papi, url, "default", "p1")
        # The prefix must reach p1's own plane, not the root.
        client.CoreV1Api(papi).create_namespaced_config_map(
            "default", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="only-in-p1")),
            _request_timeout=REQ_T)
    with new_api(url) as api:
        try:
            client.CoreV1Api(api).read_namespaced_config_map(
                "only-in-p1", "default", _request_timeout=REQ_T)
            raise CheckFailed("configmap created under %s is visible at the "
                              "root" % (PREFIX % "p1"))
        except ApiException as e:
            expect(e.status == 404, "root read of p1's configmap: %s, want "
                   "404" % e.status)
    return "same sequence through %s (plane p1, isolated from root)" % \
        (PREFIX % "p1")


# ---- P2: watch from a list RV with timeout_seconds --------------------------

def run_writer(url, ns, steps, out, delay=0.5):
    """In a thread: after `delay`, run steps (callables taking CoreV1Api)
    and append their results (or the exception) to out."""
    def body():
        try:
            time.sleep(delay)
            with new_api(url) as api:
                core = client.CoreV1Api(api)
                for step in steps:
                    out.append(step(core))
                    time.sleep(0.2)
        except Exception as e:  # noqa: BLE001 - reported by the check
            out.append(e)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def check_p2(url):
    ns = "default"
    with new_api(url) as api:
        core = client.CoreV1Api(api)
        lst = core.list_namespaced_config_map(ns, _request_timeout=REQ_T)
        list_rv = lst.metadata.resource_version
        expect(list_rv and list_rv.isdigit(), "list RV %r" % list_rv)
        since = last_seq(url)
        writes = []
        t = run_writer(url, ns, [
            lambda c: c.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="w1"), data={"k": "1"}),
                _request_timeout=REQ_T),
            lambda c: c.patch_namespaced_config_map(
                "w1", ns, {"data": {"k": "2"}}, _request_timeout=REQ_T),
        ], writes)
        t0 = time.monotonic()
        events = []
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns,
                                      resource_version=list_rv,
                                      timeout_seconds=3,
                                      _request_timeout=REQ_T):
            events.append(e)
            expect(len(events) < 100, "more than 100 events")
        elapsed = time.monotonic() - t0
        t.join(REQ_T)
        for w in writes:
            if isinstance(w, Exception):
                raise CheckFailed("writer failed: %r" % w)
        expect(len(writes) == 2, "writer did not finish: %r" % writes)
        got = [(e["type"], e["object"].metadata.name,
                e["object"].metadata.resource_version) for e in events]
        want = [("ADDED", "w1", writes[0].metadata.resource_version),
                ("MODIFIED", "w1", writes[1].metadata.resource_version)]
        expect(got == want, "events %r, want %r" % (got, want))
        expect(events[1]["object"].data == {"k": "2"},
               "MODIFIED object data %r" % events[1]["object"].data)
        expect(elapsed <= 4 * SCALE,
               "stream ended after %.2f s, want <= 4 s" % elapsed)
        watches = [r for r in sim_requests(url, since)
                   if "watch=" in r.get("query", "")]
        expect(len(watches) == 1, "watch requests: %r, want 1" % watches)
        q = watches[0]["query"]
        expect("watch=True" in q and "resourceVersion=%s" % list_rv in q
               and "timeoutSeconds=3" in q and watches[0]["status"] == 200,
               "watch request %r (want watch=True accepted, 200)" % watches[0])
    return "ADDED, MODIFIED in order from list RV %s; stream ended in " \
           "%.1f s; watch=True accepted" % (list_rv, elapsed)


# ---- P3: bookmarks ----------------------------------------------------------

def check_p3(url):
    ns = "default"
    with new_api(url) as api:
        core = client.CoreV1Api(api)
        writes = []
        t = run_writer(url, ns, [
            lambda c: c.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="b1")),
                _request_timeout=REQ_T),
        ], writes)
        t0 = time.monotonic()
        events = []
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns,
                                      allow_watch_bookmarks=True,
                                      timeout_seconds=3,
                                      _request_timeout=REQ_T):
            events.append(e)
            expect(len(events) < 100, "more than 100 events")
        elapsed = time.monotonic() - t0
        t.join(REQ_T)
        expect(len(writes) == 1 and not isinstance(writes[0], Exception),
               "writer: %r" % writes)
        b1_rv = int(writes[0].metadata.resource_version)
        kinds = [e["type"] for e in events]
        marks = [e for e in events if e["type"] == "BOOKMARK"]
        expect(len(marks) >= 2, "%d BOOKMARK events in 3 s with a 1 s "
               "interval (events %r)" % (len(marks), kinds))
        added = [i for i, e in enumerate(events) if e["type"] == "ADDED"]
        expect(len(added) == 1 and
               events[added[0]]["raw_object"]["metadata"]["name"] == "b1",
               "want exactly one ADDED (b1), got %r" % kinds)
        prev = 0
        for i, m in enumerate(events):
            if m["type"] != "BOOKMARK":
                continue
            raw = m["raw_object"]
            rv = (raw.get("metadata") or {}).get("resourceVersion")
            expect(isinstance(rv, str) and rv.isdigit(),
                   "bookmark without a numeric raw_object.metadata."
                   "resourceVersion: %r" % raw)
            expect(raw.get("kind") == "ConfigMap" and
                   raw.get("apiVersion") == "v1",
                   "bookmark kind/apiVersion: %r" % raw)
            expect(int(rv) >= prev, "bookmark RVs go backwards: %s < %s" %
                   (rv, prev))
            prev = int(rv)
            if i > added[0]:
                expect(int(rv) >= b1_rv, "bookmark %s after the ADDED of "
                       "RV %d" % (rv, b1_rv))
        expect(elapsed <= 4 * SCALE, "stream ended after %.2f s" % elapsed)
    return "%d BOOKMARK events with raw_object.metadata.resourceVersion " \
           "(%s)" % (len(marks), ", ".join(
               m["raw_object"]["metadata"]["resourceVersion"] for m in marks))


# ---- P4: expired watch ------------------------------------------------------

def expect_expired_watch(url, core, ns, rv, how):
    """Python's watch from `rv` must raise ApiException(410, "Expired: too
    old resource version: ...") after exactly 2 watch requests (it retries
    once with the same RV).  Returns the exception's reason."""
    since = last_seq(url)
    events = []
    err = None
    try:
        for e in watch.Watch().stream(core.list_namespaced_config_map,
                                      ns, resource_version=rv,
                                      _request_timeout=REQ_T):
            events.append(e)
            expect(len(events) < 100, "%s: more than 100 events" % how)
    except ApiException as e:
        err = e
    expect(err is not None, "%s: the watch from RV %s ended without an "
           "ApiException (events %r)" %
           (how, rv, [e["type"] for e in events]))
    expect(err.status == 410 and
           str(err.reason).startswith("Expired: too old resource version: "),
           "%s: ApiException(%s, %r), want ApiException(410, 'Expired: too "
           "old resource version: ...')" % (how, err.status, err.reason))
    expect(not events, "%s: events before the error: %r" %
           (how, [e["type"] for e in events]))
    watches = [r for r in sim_requests(url, since)
               if r.get("method") == "GET" and
               r.get("path") == "/api/v1/namespaces/%s/configmaps" % ns
               and "watch=" in r.get("query", "")]
    expect(len(watches) == 2, "%s: %d watch requests, want exactly 2: %r" %
           (how, len(watches), [(w.get("query"), w.get("status"))
                                for w in watches]))
    for w in watches:
        expect("resourceVersion=%s" % rv in w.get("query", ""),
               "%s: watch request without resourceVersion=%s: %r" %
               (how, rv, w.get("query")))
    return err.reason


def check_p4(url):
    ns = "default"
    with new_api(url) as api:
        core = client.CoreV1Api(api)
        cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="e1"), data={"v": "0"}),
            _request_timeout=REQ_T)
        old_rv = cm.metadata.resource_version
        for i in (1, 2):
            core.patch_namespaced_config_map(
                "e1", ns, {"data": {"v": str(i)}}, _request_timeout=REQ_T)
        # 1. Compaction: the floor moves past old_rv.
        st, body = http_json("POST", url + "/_sim/compact",
                             {"plane": "", "rv": "current"})
        expect(st == 200, "POST /_sim/compact: %s %r" % (st, body))
        by_compact = expect_expired_watch(url, core, ns, old_rv,
                                          "after compaction")
        # 2. The expire fault (§7), ERROR-event form, on a current RV.
        cur = core.list_namespaced_config_map(
            ns, _request_timeout=REQ_T).metadata.resource_version
        st, body = http_json("POST", url + "/_sim/faults", {
            "match": {"verb": "watch", "resource": "configmaps"},
            "action": {"watch": "expire", "form": "event"}})
        expect(st in (200, 201), "POST /_sim/faults: %s %r" % (st, body))
        try:
            by_fault = expect_expired_watch(url, core, ns, cur,
                                            "expire fault")
        finally:
            http_json("DELETE", url + "/_sim/faults")
    return "ApiException(410, %r) after compaction and (410, %r) from the " \
        "expire fault, each after exactly 2 watch requests" % \
        (by_compact, by_fault)


# ---- P5: CustomObjectsApi on projects ---------------------------------------

def conditions(status="True", **over):
    c = {"type": "Ready", "status": status, "reason": "Ready",
         "message": "Project is ready",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}
    c.update(over)
    return {"status": {"conditions": [c]}}


def check_p5(url):
    with new_api(url) as api:
        custom = client.CustomObjectsApi(api)
        since = last_seq(url)
        p, st, _ = custom.create_cluster_custom_object_with_http_info(
            MILO_G, MILO_V, "projects", project_body("pyp"),
            _request_timeout=REQ_T)
        expect(st == 201, "create: status %s, want 201" % st)
        expect(p["metadata"].get("generation") == 1 and "status" not in p,
               "created project: %r (want generation 1, no status)" % p)

        p = custom.patch_cluster_custom_object(
            MILO_G, MILO_V, "projects", "pyp",
            {"spec": {"ownerRef": {"name": "org2"}}}, _request_timeout=REQ_T)
        expect(p["spec"]["ownerRef"] == {"kind": "Organization",
                                         "name": "org2"}
               and p["metadata"].get("generation") == 2,
               "merge patch of spec: %r (want org2, generation 2)" % p)

        p = custom.patch_cluster_custom_object_status(
            MILO_G, MILO_V, "projects", "pyp", conditions(),
            _request_timeout=REQ_T)
        conds = (p.get("status") or {}).get("conditions") or []
        expect(len(conds) == 1 and conds[0]["status"] == "True" and
               p["metadata"].get("generation") == 2,
               "status patch: %r (want Ready=True, generation 2)" % p)

        for bad, what in ((conditions(status="true"), 'status "true"'),
                          (conditions(reason=""), "empty reason"),
                          ({"status": {"conditions": [
                              {"type": "Ready", "status": "True",
                               "reason": "Ready", "message": "m"}]}},
                           "no lastTransitionTime")):
            try:
                custom.patch_cluster_custom_object_status(
                    MILO_G, MILO_V, "projects", "pyp", bad,
                    _request_timeout=REQ_T)
                raise CheckFailed("status patch with %s accepted, want 422"
                                  % what)
            except ApiException as e:
                b = api_error_body(e)
                expect(e.status == 422 and b.get("reason") == "Invalid",
                       "status patch with %s: %s %s, want 422 Invalid" %
                       (what, e.status, e.body))

        lst = custom.list_cluster_custom_object(MILO_G, MILO_V, "projects",
                                                _request_timeout=REQ_T)
        names = [i["metadata"]["name"] for i in lst.get("items", [])]
        expect(names == ["pyp"], "list: items %r, want ['pyp']" % names)
        list_rv = lst["metadata"]["resourceVersion"]
        expect(lst["items"][0]["status"]["conditions"][0]["status"] == "True",
               "list shows %r" % lst["items"][0].get("status"))

        p = custom.patch_cluster_custom_object_status(
            MILO_G, MILO_V, "projects", "pyp",
            conditions(message="still ready"), _request_timeout=REQ_T)
        events = [(e["type"], e["object"]["metadata"]["name"],
                   e["object"]["metadata"]["resourceVersion"],
                   e["object"]["status"]["conditions"][0]["message"])
                  for e in watch.Watch().stream(
                      custom.list_cluster_custom_object, MILO_G, MILO_V,
                      "projects", resource_version=list_rv, timeout_seconds=2,
                      _request_timeout=REQ_T)]
        want = [("MODIFIED", "pyp", p["metadata"]["resourceVersion"],
                 "still ready")]
        expect(events == want, "watch from %s: %r, want %r" %
               (list_rv, events, want))

        merges = [r for r in sim_requests(url, since)
                  if r.get("method") == "PATCH"]
        expect(all(r.get("content_type") == "application/merge-patch+json"
                   for r in merges) and len(merges) == 6,
               "PATCH requests: %r" % [(r.get("path"), r.get("content_type"),
                                        r.get("status")) for r in merges])
    return "create 201, merge patch (generation 1->2), status patch, " \
           "invalid conditions 422, list, watch MODIFIED"


# ---- P6: Lease ----------------------------------------------------------------

def check_p6(url):
    ns = "default"
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.microsecond == 0:
        now = now.replace(microsecond=123456)
    with new_api(url) as api:
        coord = client.CoordinationV1Api(api)
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name="le"),
            spec=client.V1LeaseSpec(holder_identity="py-a",
                                    lease_duration_seconds=15,
                                    acquire_time=now, renew_time=now,
                                    lease_transitions=0))
        _, st, _ = coord.create_namespaced_lease_with_http_info(
            ns, body, _request_timeout=REQ_T)
        expect(st == 201, "create lease: status %s" % st)
        raw = raw_get(api, "/apis/coordination.k8s.io/v1/namespaces/%s/"
                      "leases/le" % ns)
        want = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = raw.get("spec") or {}
        expect(spec.get("renewTime") == want and spec.get("acquireTime") == want,
               "renewTime %r acquireTime %r, want %r (sent %s)" %
               (spec.get("renewTime"), spec.get("acquireTime"), want,
                now.isoformat()))
        expect(spec.get("holderIdentity") == "py-a" and
               spec.get("leaseDurationSeconds") == 15,
               "lease spec %r" % spec)

        le = coord.read_namespaced_lease("le", ns, _request_timeout=REQ_T)
        expect(le.spec.renew_time == now, "parsed renew_time %r, want %r" %
               (le.spec.renew_time, now))
        stale_rv = le.metadata.resource_version
        le.spec.renew_time = now + datetime.timedelta(seconds=2)
        fresh = coord.replace_namespaced_lease("le", ns, le,
                                               _request_timeout=REQ_T)
        expect(int(fresh.metadata.resource_version) > int(stale_rv),
               "replace (fresh): rv %s after %s" %
               (fresh.metadata.resource_version, stale_rv))
        le.metadata.resource_version = stale_rv
        le.spec.holder_identity = "py-b"
        try:
            coord.replace_namespaced_lease("le", ns, le,
                                           _request_timeout=REQ_T)
            raise CheckFailed("replace with stale RV %s succeeded" % stale_rv)
        except ApiException as e:
            b = api_error_body(e)
            expect(e.status == 409 and b.get("reason") == "Conflict",
                   "replace-stale: %s %s, want 409 Conflict" %
                   (e.status, e.body))
    return "renewTime sent as %s came back as %s; stale replace 409" % \
        (now.isoformat(), want)


# ---- P7: dynamic client -------------------------------------------------------

def check_p7(url):
    with new_api(url) as api:
        custom = client.CustomObjectsApi(api)
        for n in ("dyn-a", "dyn-b"):
            custom.create_cluster_custom_object(
                MILO_G, MILO_V, "projects", project_body(n),
                _request_timeout=REQ_T)
        since = last_seq(url)
        with tempfile.TemporaryDirectory() as d:
            dyn = dynamic.DynamicClient(api, cache_file=os.path.join(
                d, "discovery.json"))
            res = dyn.resources.get(api_version="%s/%s" % (MILO_G, MILO_V),
                                    kind="Project")
            expect(res.name == "projects" and not res.namespaced,
                   "resource %s namespaced=%s" % (res.name, res.namespaced))
            lst = res.get()
        names = sorted(i.metadata.name for i in lst.items)
        expect(names == ["dyn-a", "dyn-b"], "listed %r" % names)
        paths = [r.get("path") for r in sim_requests(url, since)
                 if r.get("method") == "GET"]
        for want in ("/apis", "/apis/%s/%s" % (MILO_G, MILO_V),
                     "/apis/%s/%s/projects" % (MILO_G, MILO_V)):
            expect(want in paths, "no GET %s in %r" % (want, paths))
    return "DynamicClient lists projects %r via legacy discovery" % names


# ---- driver ---------------------------------------------------------------------

CHECKS = [
    ("P1", check_p1, []),
    ("P1/p1", check_p1_project, []),
    ("P2", check_p2, []),
    ("P3", check_p3, ["--bookmark-interval", "1s"]),
    ("P4", check_p4, []),
    ("P5", check_p5, []),
    ("P6", check_p6, []),
    ("P7", check_p7, []),
]


def on_alarm(signum, frame):
    raise Watchdog("check still running after %.0f s" % CHECK_DEADLINE)


def run_check(binary, name, fn, extra):
    sim = Kubesim(binary, extra)
    why, desc = None, ""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CHECK_DEADLINE)
    try:
        url = sim.start()
        desc = fn(url)
    except CheckFailed as e:
        why = str(e)
    except Watchdog as e:
        why = str(e)
    except ApiException as e:
        why = "unexpected ApiException %s %s: %s" % (e.status, e.reason,
                                                      (e.body or "")[:500])
    except Exception as e:  # noqa: BLE001 - every error is a failure
        why = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        problems = sim.stop()
    if problems:
        why = "; ".join(([why] if why else []) + problems)
    if why:
        print("FAIL %s: %s" % (name, why), flush=True)
        return False
    print("ok %s %s" % (name, desc), flush=True)
    return True


def main(argv):
    if len(argv) != 2:
        print("usage: %s /path/to/kubesim" % argv[0], file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    binary = argv[1]
    passed = failed = 0
    if IMPORT_ERROR is not None:
        for name, _, _ in CHECKS:
            print("FAIL %s: cannot import kubernetes (%s); install it with: "
                  "apt-get install -y python3-kubernetes" %
                  (name, IMPORT_ERROR), flush=True)
            failed += 1
    elif not os.access(binary, os.X_OK):
        for name, _, _ in CHECKS:
            print("FAIL %s: %s is not an executable kubesim" % (name, binary))
            failed += 1
    else:
        print("# python3-kubernetes %s, kubesim %s" %
              (kubernetes.__version__, binary), flush=True)
        for name, fn, extra in CHECKS:
            if run_check(binary, name, fn, extra):
                passed += 1
            else:
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
