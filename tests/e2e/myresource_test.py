#!/usr/bin/python3
"""MyResource end to end: the worker against kubesim, kubectl as the user.

Usage: /usr/bin/python3 tests/e2e/myresource_test.py KUBESIM WORKER REPO_ROOT

Starts kubesim on 127.0.0.1:0, installs the MyResource CRD from
deploy/crds/, runs `mcfleet-worker --standalone` and drives it with kubectl
(a fresh --cache-dir per invocation) the way a user would:

  create    200 MyResources in three namespaces, one `kubectl apply -f` of a
            multi-document YAML; all become Ready (the contract of
            worker/myresource.h: finalizer, a controlled ConfigMap holding
            spec.data, condition Ready/ReconcileSucceeded with
            observedGeneration, status.observedGeneration and
            status.configMapName), one Created Event each;
  spec      50 specs changed (kubectl patch, kubectl apply, kubectl edit):
            the ConfigMaps follow, Updated Events;
  cmdelete  30 ConfigMaps deleted by hand: re-created (new uid), Repaired;
  cmedit    20 ConfigMaps' data edited by hand (patch, edit): repaired;
  cmname    10 configMapName changes: the ConfigMap moves, the old goes;
  conflict  a MyResource whose ConfigMap name is taken by a foreign
            ConfigMap goes Ready=False/ConfigMapConflict and leaves the
            foreign one alone; renaming fixes it;
  metrics   /metrics and /status report the reconciles;
  delete    `kubectl delete myr --all`: the worker deletes each ConfigMap
            (seen in kubesim's request log), emits Cleanup, drops the
            finalizer; nothing is left behind;
  sigterm   SIGTERM: exit 0 within a bound (a sanitizer report fails it);
  namespace a second worker with --namespace e2e-a touches only e2e-a.

Every wait polls against a deadline scaled by MCF_TEST_TIMEOUT_SCALE (a
positive integer, default 1).  Each check prints `ok NAME ...`; the first
failure prints what was expected and what was seen, the tails of the
worker's and kubesim's stderr, and exits 1.  Every child process is killed
by its PID on the way out.  E2E_KEEP=1 keeps the work directory.
"""

import atexit
import concurrent.futures
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def _scale():
    try:
        v = int(os.environ.get("MCF_TEST_TIMEOUT_SCALE", "1") or "1")
    except ValueError:
        v = 1
    return max(1, v)


SCALE = _scale()
KUBECTL_T = 60 * SCALE      # one kubectl invocation
START_T = 20 * SCALE        # a process prints its `listening on` line
READY_T = 30 * SCALE        # worker /readyz
CONVERGE_T = 60 * SCALE     # a round of changes converges
STOP_T = 15 * SCALE         # SIGTERM -> exit
WATCHDOG_T = 270 * SCALE    # the whole test (ctest allows 300 x scale)

GROUP = "example.mcfleet.io"
VERSION = "v1alpha1"
MR_RES = "myresources.%s" % GROUP
FIN = "example.mcfleet.io/cleanup"
NAMESPACES = ("e2e-a", "e2e-b", "e2e-c")
N_MR = 200
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Failure(Exception):
    pass


def expect(cond, what, expected, seen):
    if not cond:
        raise Failure("%s\n  expected: %s\n  seen:     %s" % (what, expected, seen))


def ok(name, msg):
    print("ok %s %s" % (name, msg), flush=True)


# ---- child processes ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Spawned from the main thread only: the signal follows the thread.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


CHILDREN = []   # every long-lived Popen we started


def kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


atexit.register(kill_children)


class Proc:
    """A long-lived child (kubesim or a worker).  stdout is a pipe whose
    first line must be `listening on URL[ (ROLE)]`; stderr goes to a file
    in the work dir."""

    def __init__(self, label, args, workdir, role=None):
        self.label = label
        self.args = args
        self.role = role
        self.errpath = os.path.join(workdir, "%s.stderr" % label)
        self.proc = None
        self.url = None
        self.extra_stdout = b""

    def start(self):
        errf = open(self.errpath, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=errf,
                                     preexec_fn=_die_with_parent)
        errf.close()
        CHILDREN.append(self.proc)
        deadline = time.monotonic() + START_T
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s printed no `listening on` line within %d s "
                              "(stdout so far %r)" % (self.label, START_T, buf))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                if self.proc.poll() is not None:
                    raise Failure("%s exited with %s before listening; stdout %r"
                                  % (self.label, self.proc.returncode, buf))
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                try:
                    self.proc.wait(timeout=2 * SCALE)
                except subprocess.TimeoutExpired:
                    pass
                raise Failure("%s closed stdout before listening (exit %s, "
                              "stdout %r)" % (self.label, self.proc.poll(), buf))
            buf += chunk
        line, rest = buf.split(b"\n", 1)
        self.extra_stdout = rest
        line = line.decode("utf-8", "replace")
        pat = r"listening on (http://127\.0\.0\.1:\d+)"
        if self.role:
            pat += r" \(%s\)" % re.escape(self.role)
        m = re.fullmatch(pat, line)
        expect(m is not None, "%s's first stdout line" % self.label,
               "listening on http://127.0.0.1:PORT" +
               (" (%s)" % self.role if self.role else ""), repr(line))
        self.url = m.group(1)
        return self.url

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def terminate(self, timeout):
        """SIGTERM; returns (exit code or None if it did not exit, seconds)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        return self.proc.returncode, time.monotonic() - t0

    def remaining_stdout(self):
        """Whatever it wrote to stdout after its first line (after exit)."""
        data = self.extra_stdout
        try:
            data += self.proc.stdout.read()
        except (OSError, ValueError):
            pass
        return data

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---- HTTP ----------------------------------------------------------------------

def http(method, url, body=None, ctype="application/json", timeout=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": ctype,
                                          "User-Agent": "e2e-test"})
    try:
        with urllib.request.urlopen(req, timeout=timeout or 10 * SCALE) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


def http_json(method, url, body=None):
    st, raw = http(method, url, body)
    try:
        return st, json.loads(raw or b"null")
    except ValueError:
        return st, raw.decode("utf-8", "replace")


# ---- the test ------------------------------------------------------------------

class Test:
    def __init__(self, kubesim, worker, root):
        self.kubesim_bin = kubesim
        self.worker_bin = worker
        self.root = root
        self.work = tempfile.mkdtemp(prefix="e2e_myresource.")
        self.kc = os.path.join(self.work, "kubesim.kubeconfig")
        self.sim = None
        self.workers = []
        self.reqlog = {}        # seq -> entry, fetched incrementally
        self.reqlog_since = 0
        self.model = {}         # (ns, name) -> {"data": {}, "cm": name}
        self.uids = {}          # (ns, name) -> MR uid
        self.rng = random.Random(20240611)

    # -- tools --

    def kubectl(self, *args, check=True, env=None, stdin=None):
        cache = tempfile.mkdtemp(prefix="kc.", dir=self.work)
        cmd = ["kubectl", "--kubeconfig", self.kc, "--cache-dir", cache] + \
            [str(a) for a in args]
        e = dict(os.environ)
        e.pop("KUBECONFIG", None)
        if env:
            e.update(env)
        try:
            r = subprocess.run(cmd, input=stdin, capture_output=True,
                               text=True, timeout=KUBECTL_T, env=e)
        except subprocess.TimeoutExpired:
            raise Failure("kubectl %s did not finish within %d s"
                          % (" ".join(cmd[5:]), KUBECTL_T))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if check and r.returncode != 0:
            raise Failure("kubectl %s\n  expected: exit 0\n  seen:     exit %d, "
                          "stderr %s" % (" ".join(cmd[5:]), r.returncode,
                                         r.stderr.strip()[-1500:]))
        return r

    def kget(self, resource, *extra):
        r = self.kubectl("get", resource, "-o", "json", *extra)
        try:
            return json.loads(r.stdout)["items"]
        except (ValueError, KeyError) as e:
            raise Failure("kubectl get %s -o json: unparsable output (%s): %r"
                          % (resource, e, r.stdout[:500]))

    def fetch_reqlog(self):
        st, body = http_json("GET", "%s/_sim/requests?since=%d"
                             % (self.sim.url, self.reqlog_since))
        expect(st == 200 and isinstance(body, dict), "GET /_sim/requests",
               "200 with {items: [...]}", "%s %r" % (st, str(body)[:300]))
        for e in body.get("items", []):
            s = int(e.get("seq", 0))
            self.reqlog[s] = e
            self.reqlog_since = max(self.reqlog_since, s)
        return self.reqlog

    def wait_until(self, what, fn, timeout, interval=0.3):
        """Polls fn() -> (done, detail) until done or the deadline; returns
        the seconds taken."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            done, detail = fn()
            if done:
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                raise Failure("%s: not within %d s\n  seen: %s"
                              % (what, timeout, detail))
            time.sleep(interval)

    # -- the model --

    def mr_doc(self, ns, name):
        want = self.model[(ns, name)]
        spec = {"data": dict(want["data"])}
        if want.get("spec_cm"):
            spec["configMapName"] = want["spec_cm"]
        return {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "MyResource",
                "metadata": {"name": name, "namespace": ns}, "spec": spec}

    def write_yaml(self, fname, docs):
        # JSON is YAML; one document per object.
        path = os.path.join(self.work, fname)
        with open(path, "w") as f:
            for d in docs:
                f.write("---\n")
                f.write(json.dumps(d, indent=1, sort_keys=True))
                f.write("\n")
        return path

    def set_cm(self, key, spec_cm):
        self.model[key]["spec_cm"] = spec_cm
        self.model[key]["cm"] = spec_cm or key[1]

    def state(self):
        mrs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
               for o in self.kget(MR_RES, "-A")}
        cms = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
               for o in self.kget("configmaps", "-A")}
        return mrs, cms

    @staticmethod
    def controllers(cm):
        return [r for r in (cm["metadata"].get("ownerReferences") or [])
                if r.get("controller")]

    def problems(self, mrs, cms, ignore=()):
        out = []
        for key, want in sorted(self.model.items()):
            ns, name = key
            mr = mrs.get(key)
            if mr is None:
                out.append("%s/%s: MyResource missing" % key)
                continue
            md = mr["metadata"]
            gen = md.get("generation")
            spec = mr.get("spec") or {}
            if (spec.get("data") or {}) != want["data"]:
                out.append("%s/%s: spec.data %r, the test wrote %r"
                           % (ns, name, spec.get("data"), want["data"]))
            if FIN not in (md.get("finalizers") or []):
                out.append("%s/%s: finalizers %r lack %s"
                           % (ns, name, md.get("finalizers"), FIN))
            st = mr.get("status") or {}
            ready = [c for c in st.get("conditions") or []
                     if c.get("type") == "Ready"]
            if (len(ready) != 1 or ready[0].get("status") != "True"
                    or ready[0].get("reason") != "ReconcileSucceeded"
                    or ready[0].get("observedGeneration") != gen):
                out.append("%s/%s: Ready condition %r at generation %s, want "
                           "True/ReconcileSucceeded/observedGeneration %s"
                           % (ns, name, ready, gen, gen))
            if st.get("observedGeneration") != gen:
                out.append("%s/%s: status.observedGeneration %r, generation %r"
                           % (ns, name, st.get("observedGeneration"), gen))
            if st.get("configMapName") != want["cm"]:
                out.append("%s/%s: status.configMapName %r, want %r"
                           % (ns, name, st.get("configMapName"), want["cm"]))
            cm = cms.get((ns, want["cm"]))
            if cm is None:
                out.append("%s/%s: ConfigMap %s missing" % (ns, name, want["cm"]))
                continue
            if (cm.get("data") or {}) != want["data"]:
                out.append("%s/%s: ConfigMap %s data %r, spec.data %r"
                           % (ns, name, want["cm"], cm.get("data"), want["data"]))
            if cm.get("binaryData"):
                out.append("%s/%s: ConfigMap %s has binaryData" % (ns, name, want["cm"]))
            refs = self.controllers(cm)
            if (len(refs) != 1 or refs[0].get("uid") != md.get("uid")
                    or refs[0].get("kind") != "MyResource"
                    or refs[0].get("name") != name
                    or refs[0].get("apiVersion") != "%s/%s" % (GROUP, VERSION)):
                out.append("%s/%s: ConfigMap %s controller refs %r, want one "
                           "controller MyResource %s uid %s"
                           % (ns, name, want["cm"], refs, name, md.get("uid")))
        live = {(k[0], w["cm"]) for k, w in self.model.items()}
        for key, cm in sorted(cms.items()):
            if key in live or key in ignore:
                continue
            for r in self.controllers(cm):
                if r.get("kind") == "MyResource":
                    out.append("%s/%s: stray ConfigMap controlled by "
                               "MyResource %s (should be gone)"
                               % (key[0], key[1], r.get("name")))
        for key in sorted(mrs):
            if key not in self.model and key not in ignore:
                out.append("%s/%s: MyResource should be gone (finalizers %r, "
                           "deletionTimestamp %r)" % (key[0], key[1],
                           mrs[key]["metadata"].get("finalizers"),
                           mrs[key]["metadata"].get("deletionTimestamp")))
        return out

    def wait_converged(self, check, ignore=()):
        last = {"p": []}
        seen = {}

        def fn():
            mrs, cms = self.state()
            p = self.problems(mrs, cms, ignore)
            last["p"] = p
            seen["mrs"], seen["cms"] = mrs, cms
            return not p, "%d problem(s):\n    %s" % (
                len(p), "\n    ".join(p[:15]))
        took = self.wait_until("%s: everything converges" % check, fn,
                               CONVERGE_T, interval=0.5)
        return took, seen["mrs"], seen["cms"]

    def events(self):
        """(ns, involvedObject.name, reason) -> [event, ...] for
        MyResource events."""
        out = {}
        for e in self.kget("events", "-A"):
            inv = e.get("involvedObject") or {}
            if inv.get("kind") != "MyResource":
                continue
            k = (e["metadata"].get("namespace"), inv.get("name"), e.get("reason"))
            out.setdefault(k, []).append(e)
        return out

    def wait_events(self, check, reason, keys, at_least):
        """Every MR in `keys` has at least at_least[key] Events with
        `reason` whose involvedObject names its uid."""
        def fn():
            ev = self.events()
            missing = []
            for key in keys:
                got = [e for e in ev.get((key[0], key[1], reason), [])
                       if (e.get("involvedObject") or {}).get("uid")
                       == self.uids.get(key)]
                if len(got) < at_least[key]:
                    missing.append("%s/%s has %d, want >= %d"
                                   % (key[0], key[1], len(got), at_least[key]))
            return not missing, "%d MyResource(s) short of %s Events: %s" % (
                len(missing), reason, "; ".join(missing[:10]))
        return self.wait_until("%s: %s Events" % (check, reason), fn, CONVERGE_T,
                               interval=0.5)

    def event_counts(self, reason, keys=None):
        ev = self.events()
        return {k: len([e for e in ev.get((k[0], k[1], reason), [])
                        if (e.get("involvedObject") or {}).get("uid")
                        == self.uids.get(k)])
                for k in (self.model if keys is None else keys)}

    # -- processes --

    def start_kubesim(self):
        self.sim = Proc("kubesim", [self.kubesim_bin, "--listen", "127.0.0.1:0",
                                    "--kubeconfig-out", self.kc,
                                    "--request-log", "200000"], self.work)
        self.sim.start()

    def start_worker(self, label, name, *extra):
        w = Proc(label, [self.worker_bin, "--standalone", "--kubeconfig", self.kc,
                         "--http", "127.0.0.1:0", "--name", name, "--resync", "0s",
                         *extra], self.work, role="status")
        self.workers.append(w)
        w.start()

        def ready():
            st, body = http("GET", w.url + "/readyz", timeout=5 * SCALE)
            if not w.alive():
                raise Failure("%s exited with %s while waiting for /readyz"
                              % (label, w.proc.returncode))
            return st == 200, "/readyz %s %r" % (st, body[:200])
        took = self.wait_until("%s /readyz" % label, ready, READY_T, 0.1)
        return w, took

    def stop_worker(self, w, check):
        rc, took = w.terminate(STOP_T)
        expect(rc is not None, "%s: SIGTERM to pid %d" % (check, w.pid),
               "exit within %d s" % STOP_T, "still running")
        err = w.stderr_text()
        marks = [m for m in SANITIZER_MARKS if m in err]
        expect(rc == 0 and not marks, "%s: exit status after SIGTERM" % check,
               "0 and no sanitizer report", "%s, sanitizer marks %r" % (rc, marks))
        out = w.remaining_stdout()
        expect(out == b"", "%s: stdout after the listening line" % check,
               "nothing", repr(out[:300]))
        bad = []
        for line in err.splitlines():
            try:
                if not isinstance(json.loads(line), dict):
                    bad.append(line)
            except ValueError:
                bad.append(line)
        expect(not bad, "%s: stderr is JSON lines" % check, "every line a JSON "
               "object", "%d other line(s), first %r" % (len(bad), bad[:1]))
        return took

    # -- checks --

    def setup(self):
        self.start_kubesim()
        crd = os.path.join(self.root, "deploy", "crds",
                           "myresources.example.mcfleet.io.yaml")
        self.kubectl("apply", "-f", crd)
        for ns in NAMESPACES:
            self.kubectl("create", "namespace", ns)
        self.kubectl("wait", "--for=condition=Established", "--timeout=%ds" % (30 * SCALE),
                     "crd/" + MR_RES)
        ok("setup", "kubesim at %s, CRD %s, namespaces %s"
           % (self.sim.url, MR_RES, ",".join(NAMESPACES)))

    def check_create(self):
        self.w1, took = self.start_worker("worker1", "e2e-worker-1")
        ok("worker-start", "%s, /readyz 200 after %.1f s" % (self.w1.url, took))
        docs = []
        for i in range(N_MR):
            ns = NAMESPACES[i % len(NAMESPACES)]
            name = "mr-%03d" % i
            data = {} if i % 17 == 0 else {"index": str(i), "value": "v0-%03d" % i}
            self.model[(ns, name)] = {"data": data}
            self.set_cm((ns, name), "cm-of-mr-%03d" % i if i % 5 == 0 else None)
            docs.append(self.mr_doc(ns, name))
        path = self.write_yaml("mrs.yaml", docs)
        t0 = time.monotonic()
        r = self.kubectl("apply", "-f", path)
        created = len(re.findall(r"created", r.stdout))
        expect(created == N_MR, "kubectl apply -f mrs.yaml", "%d created" % N_MR,
               "%d: %s" % (created, r.stdout[-300:]))
        took, mrs, _ = self.wait_converged("create")
        for key, mr in mrs.items():
            if key in self.model:
                self.uids[key] = mr["metadata"]["uid"]
        ok("create", "%d MyResources in %d namespaces from one kubectl apply: all "
           "Ready/ReconcileSucceeded with observedGeneration, finalizer, owned "
           "ConfigMaps with spec.data (%.1f s after apply)"
           % (N_MR, len(NAMESPACES), time.monotonic() - t0))
        took = self.wait_events("create", "Created", list(self.model),
                                {k: 1 for k in self.model})
        ok("create-events", "a Created Event for each of the %d MyResources"
           % len(self.model))

    def check_spec(self):
        keys = sorted(self.model)
        chosen = self.rng.sample(keys, 50)
        before = self.event_counts("Updated")
        by_patch, by_apply, by_edit = chosen[:30], chosen[30:49], chosen[49:]

        def patch(key):
            ns, name = key
            old = self.model[key]["data"]
            new = {"value": "v1-%s" % name, "added": "yes"}
            body = {"spec": {"data": dict(new)}}
            for k in old:
                if k not in new:
                    body["spec"]["data"][k] = None   # merge patch: remove
            self.kubectl("patch", "myr", name, "-n", ns, "--type", "merge",
                         "-p", json.dumps(body))
            return key, new
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            for key, new in ex.map(patch, by_patch):
                self.model[key]["data"] = new
        for key in by_apply:
            self.model[key]["data"] = {"value": "v2-%s" % key[1], "via": "apply"}
        path = self.write_yaml("spec-apply.yaml",
                               [self.mr_doc(*k) for k in by_apply])
        r = self.kubectl("apply", "-f", path)
        expect(r.stdout.count("configured") == len(by_apply),
               "kubectl apply of %d changed MyResources" % len(by_apply),
               "%d configured" % len(by_apply), r.stdout[-400:])
        # kubectl edit, with an editor that rewrites one value.
        key = by_edit[0]
        self.edit(["myr", key[1], "-n", key[0]], key, {"value": "v3-edited",
                                                      "edited": "by-kubectl-edit"})
        took, _, _ = self.wait_converged("spec")
        ok("spec", "50 specs changed (30 kubectl patch, 19 kubectl apply, 1 kubectl "
           "edit): ConfigMaps follow spec.data, observedGeneration caught up "
           "(%.1f s)" % took)
        self.wait_events("spec", "Updated", chosen,
                         {k: before[k] + 1 for k in chosen})
        ok("spec-events", "an Updated Event for each of the 50")

    def edit(self, target, key, newdata):
        """kubectl edit TARGET with an editor that sets the data map to
        `newdata` (spec.data for a MyResource, data for a ConfigMap)."""
        editor = os.path.join(self.work, "editor.py")
        with open(editor, "w") as f:
            f.write(EDITOR_SCRIPT)
        env = {"KUBE_EDITOR": "/usr/bin/python3 %s" % editor,
               "E2E_EDIT_DATA": json.dumps(newdata),
               "E2E_EDIT_KIND": target[0]}
        r = self.kubectl("edit", *target, env=env)
        expect("edited" in r.stdout, "kubectl edit %s" % " ".join(target),
               "'... edited'", (r.stdout + r.stderr)[-400:])
        if target[0] == "myr":
            self.model[key]["data"] = newdata

    def check_cm_delete(self):
        _, cms = self.state()
        chosen = self.rng.sample(sorted(self.model), 30)
        old_uid = {}
        before = self.event_counts("Repaired")
        per_ns = {}
        for key in chosen:
            cmname = self.model[key]["cm"]
            old_uid[key] = cms[(key[0], cmname)]["metadata"]["uid"]
            per_ns.setdefault(key[0], []).append(cmname)
        for ns, names in sorted(per_ns.items()):
            self.kubectl("delete", "configmap", "-n", ns, *names)

        def recreated():
            _, cms = self.state()
            bad = []
            for key in chosen:
                cm = cms.get((key[0], self.model[key]["cm"]))
                if cm is None or cm["metadata"]["uid"] == old_uid[key]:
                    bad.append("%s/%s: %s" % (key[0], self.model[key]["cm"],
                               "missing" if cm is None else "same uid (not deleted?)"))
            return not bad, "; ".join(bad[:10])
        self.wait_until("cmdelete: ConfigMaps re-created", recreated, CONVERGE_T, 0.5)
        took, _, _ = self.wait_converged("cmdelete")
        ok("cmdelete", "30 ConfigMaps deleted by hand (kubectl delete cm) were "
           "re-created with new uids and correct data (%.1f s)" % took)
        self.wait_events("cmdelete", "Repaired", chosen,
                         {k: before[k] + 1 for k in chosen})
        ok("cmdelete-events", "a Repaired Event for each of the 30")
        self.cm_deleted = set(chosen)

    def check_cm_edit(self):
        pool = sorted(k for k in self.model if k not in self.cm_deleted)
        chosen = self.rng.sample(pool, 20)
        # kubectl edit replaces a non-empty data map: edit one that has one.
        chosen.sort(key=lambda k: bool(self.model[k]["data"]))
        before = self.event_counts("Repaired")

        def patch(key):
            ns = key[0]
            self.kubectl("patch", "configmap", self.model[key]["cm"], "-n", ns,
                         "--type", "merge", "-p",
                         json.dumps({"data": {"value": "tampered", "extra": "x"}}))
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            list(ex.map(patch, chosen[:19]))
        key = chosen[19]
        self.edit(["configmap", self.model[key]["cm"], "-n", key[0]], key,
                  {"hand": "edited"})
        took, _, _ = self.wait_converged("cmedit")
        ok("cmedit", "20 ConfigMaps' data edited by hand (19 kubectl patch, 1 "
           "kubectl edit) were put back to spec.data (%.1f s)" % took)
        self.wait_events("cmedit", "Repaired", chosen,
                         {k: before[k] + 1 for k in chosen})
        ok("cmedit-events", "a Repaired Event for each of the 20")

    def check_cm_rename(self):
        with_name = sorted(k for k in self.model if self.model[k]["spec_cm"])
        without = sorted(k for k in self.model if not self.model[k]["spec_cm"])
        chosen = self.rng.sample(without, 7) + self.rng.sample(with_name, 3)
        before = self.event_counts("Created")
        old = {}
        for key in chosen:
            ns, name = key
            old[key] = self.model[key]["cm"]
            if self.model[key]["spec_cm"]:
                new = None                       # back to the MR's own name
            else:
                new = "moved-%s" % name
            self.kubectl("patch", "myr", name, "-n", ns, "--type", "merge", "-p",
                         json.dumps({"spec": {"configMapName": new}}))
            self.set_cm(key, new)
        took, _, cms = self.wait_converged("cmname")
        for key in chosen:
            expect((key[0], old[key]) not in cms,
                   "cmname: %s/%s's old ConfigMap %s" % (key[0], key[1], old[key]),
                   "deleted", "still there")
        ok("cmname", "10 configMapName changes (7 set, 3 removed): new ConfigMaps "
           "with the data, the old ones deleted (%.1f s)" % took)
        self.wait_events("cmname", "Created", chosen,
                         {k: before[k] + 1 for k in chosen})
        ok("cmname-events", "a Created Event for each moved ConfigMap")

    def check_conflict(self):
        ns = NAMESPACES[1]
        self.kubectl("create", "configmap", "foreign-cm", "-n", ns,
                     "--from-literal=owner=somebody-else")
        _, cms = self.state()
        foreign = cms[(ns, "foreign-cm")]
        doc = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "MyResource",
               "metadata": {"name": "mr-conflict", "namespace": ns},
               "spec": {"configMapName": "foreign-cm", "data": {"mine": "yes"}}}
        self.kubectl("apply", "-f", self.write_yaml("conflict.yaml", [doc]))
        key = (ns, "mr-conflict")
        seen = {}

        def conflicted():
            mrs, cms = self.state()
            mr = mrs.get(key)
            if mr is None:
                return False, "MyResource missing"
            seen["mr"], seen["cms"] = mr, cms
            ready = [c for c in (mr.get("status") or {}).get("conditions") or []
                     if c.get("type") == "Ready"]
            good = (len(ready) == 1 and ready[0].get("status") == "False"
                    and ready[0].get("reason") == "ConfigMapConflict"
                    and ready[0].get("observedGeneration")
                    == mr["metadata"].get("generation"))
            return good, "Ready condition %r" % ready
        self.wait_until("conflict: Ready=False reason ConfigMapConflict", conflicted,
                        CONVERGE_T, 0.5)
        mr = seen["mr"]
        fcm = seen["cms"].get((ns, "foreign-cm"))
        expect(fcm is not None and fcm["metadata"]["uid"] == foreign["metadata"]["uid"]
               and fcm.get("data") == {"owner": "somebody-else"}
               and not fcm["metadata"].get("ownerReferences"),
               "conflict: the foreign ConfigMap", "untouched: same uid, data "
               "{owner: somebody-else}, no ownerReferences",
               json.dumps(fcm and {"uid": fcm["metadata"]["uid"], "data": fcm.get("data"),
                                   "ownerReferences": fcm["metadata"].get("ownerReferences")}))
        self.uids[key] = mr["metadata"]["uid"]

        def warned():
            ev = self.events().get((ns, "mr-conflict", "ConfigMapConflict"), [])
            return (any(e.get("type") == "Warning" for e in ev),
                    "%d ConfigMapConflict Events %r" % (len(ev), [e.get("type") for e in ev]))
        self.wait_until("conflict: a Warning Event ConfigMapConflict", warned,
                        CONVERGE_T, 0.5)
        ok("conflict", "MyResource naming a foreign ConfigMap: Ready=False "
           "ConfigMapConflict with observedGeneration, Warning Event, foreign "
           "ConfigMap untouched")
        # The user fixes it by picking a free name.
        self.model[key] = {"data": {"mine": "yes"}}
        self.set_cm(key, "conflict-fixed")
        self.kubectl("patch", "myr", "mr-conflict", "-n", ns, "--type", "merge", "-p",
                     json.dumps({"spec": {"configMapName": "conflict-fixed"}}))
        took, _, cms = self.wait_converged("conflict-fixed",
                                           ignore={(ns, "foreign-cm")})
        fcm = cms.get((ns, "foreign-cm"))
        expect(fcm is not None and fcm.get("data") == {"owner": "somebody-else"}
               and not fcm["metadata"].get("ownerReferences"),
               "conflict-fixed: the foreign ConfigMap", "untouched",
               json.dumps(fcm and fcm.get("data")))
        ok("conflict-fixed", "after renaming to a free ConfigMap name the "
           "MyResource is Ready and the foreign ConfigMap still untouched (%.1f s)"
           % took)

    def check_metrics(self, w):
        st, raw = http("GET", w.url + "/metrics")
        text = raw.decode("utf-8", "replace")
        expect(st == 200, "GET /metrics", "200", "%s %s" % (st, text[:200]))
        m = re.search(r'^controller_runtime_reconcile_total\{(?=[^}]*controller='
                      r'"myresource")(?=[^}]*result="success")[^}]*\}\s+([0-9.e+]+)\s*$',
                      text, re.M)
        expect(m is not None and float(m.group(1)) > 0,
               "/metrics controller_runtime_reconcile_total{controller=\"myresource\","
               "result=\"success\"}", "> 0",
               m.group(0) if m else "no such series; reconcile lines: %r" %
               [l for l in text.splitlines() if "reconcile_total" in l][:6])
        succ = float(m.group(1))
        m2 = re.search(r'^workqueue_depth\{[^}]*name="myresource"[^}]*\}\s+([0-9.e+]+)\s*$',
                       text, re.M)
        expect(m2 is not None, "/metrics workqueue_depth{name=\"myresource\"}",
               "present", [l for l in text.splitlines() if "workqueue_depth" in l][:4])
        expect(re.search(r"^controller_runtime_reconcile_errors_total", text, re.M),
               "/metrics controller_runtime_reconcile_errors_total", "present", "absent")
        st, body = http_json("GET", w.url + "/status")
        expect(st == 200 and isinstance(body, dict), "GET /status", "200 JSON",
               "%s %r" % (st, str(body)[:300]))
        expect(body.get("mode") == "standalone" and body.get("name") == "e2e-worker-1"
               and body.get("reconciling") is True and body.get("leader") is None
               and isinstance(body.get("reconciles"), int) and body["reconciles"] > 0
               and isinstance(body.get("incarnation"), str) and body["incarnation"]
               and isinstance(body.get("clusters"), list),
               "/status", "mode standalone, name e2e-worker-1, reconciling true, "
               "leader null, reconciles > 0, incarnation, clusters[]",
               json.dumps({k: body.get(k) for k in ("mode", "name", "reconciling",
                          "leader", "reconciles", "incarnation", "clusters")}))
        # The User-Agent names the worker and its incarnation.
        ua = "mcfleet-worker/0.1.0 (e2e-worker-1; %s)" % body["incarnation"]
        log = self.fetch_reqlog()
        uas = {e.get("user_agent") for e in log.values()
               if e.get("user_agent", "").startswith("mcfleet-worker/")}
        expect(uas == {ua}, "User-Agent of the worker's requests in kubesim's log",
               repr(ua), repr(sorted(uas)[:5]))
        ok("metrics", "reconcile_total{result=success} %g, workqueue_depth %s, /status "
           "reconciles %d, User-Agent %r" % (succ, m2.group(1), body["reconciles"], ua))
        return ua

    def check_delete(self, ua):
        keys = sorted(self.model)
        final_cm = {k: self.model[k]["cm"] for k in keys}
        self.fetch_reqlog()
        mark = self.reqlog_since
        before = self.event_counts("Cleanup", keys)
        # As a user would: the first namespace with kubectl waiting for the
        # finalizers (kubectl then polls each object at its client-side 5
        # qps), the others without --wait; the test polls for those.
        t0 = time.monotonic()
        for ns in NAMESPACES[1:]:
            self.kubectl("delete", "myr", "--all", "-n", ns, "--wait=false")
        self.kubectl("delete", "myr", "--all", "-n", NAMESPACES[0],
                     "--timeout=%ds" % CONVERGE_T)
        took = time.monotonic() - t0
        self.model = {}
        took2, mrs, cms = self.wait_converged("delete",
                                              ignore={(NAMESPACES[1], "foreign-cm")})
        expect(not mrs, "delete: MyResources left", "none", sorted(mrs)[:10])
        left = [k for k in keys if (k[0], final_cm[k]) in cms]
        expect(not left, "delete: their ConfigMaps", "all gone",
               ["%s/%s" % (k[0], final_cm[k]) for k in left][:10])
        fcm = cms.get((NAMESPACES[1], "foreign-cm"))
        expect(fcm is not None and fcm.get("data") == {"owner": "somebody-else"},
               "delete: the foreign ConfigMap", "still there, untouched",
               json.dumps(fcm and fcm.get("data")))
        # The worker itself deleted every ConfigMap (not the garbage collector).
        log = self.fetch_reqlog()
        deleted = {}
        for s, e in log.items():
            if s > mark and e.get("method") == "DELETE" and e.get("user_agent") == ua:
                deleted[e.get("path")] = e.get("status")
        missing = []
        for k in keys:
            p = "/api/v1/namespaces/%s/configmaps/%s" % (k[0], final_cm[k])
            if deleted.get(p) not in (200, 202):
                missing.append("%s -> %s" % (p, deleted.get(p)))
        expect(not missing, "delete: the worker's DELETE of each owned ConfigMap "
               "in kubesim's request log", "200 for all %d" % len(keys),
               "%d missing/failed: %s" % (len(missing), "; ".join(missing[:8])))
        self.wait_events("delete", "Cleanup", keys, {k: before[k] + 1 for k in keys})
        ok("delete", "kubectl delete myr --all (%.1f s; waited for the finalizers in "
           "one namespace): "
           "the worker deleted all %d ConfigMaps, emitted Cleanup Events, dropped "
           "the finalizer; no MyResource or owned ConfigMap left; foreign one kept"
           % (took, len(keys)))

    def check_sigterm(self, w, check):
        took = self.stop_worker(w, check)
        ok(check, "SIGTERM: exit 0 after %.2f s, no sanitizer report, nothing "
           "else on stdout, stderr all JSON lines" % took)

    def check_namespace_scope(self):
        inside, outside = NAMESPACES[0], NAMESPACES[2]
        docs = [{"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "MyResource",
                 "metadata": {"name": "scoped-out", "namespace": outside},
                 "spec": {"data": {"k": "out"}}}]
        self.kubectl("apply", "-f", self.write_yaml("out.yaml", docs))
        self.fetch_reqlog()
        mark = self.reqlog_since
        w2, took = self.start_worker("worker2", "e2e-worker-2", "--namespace", inside)
        ok("ns-worker-start", "worker with --namespace %s ready after %.1f s"
           % (inside, took))
        # One MR inside before, one after; both must converge.
        for n in ("scoped-in-1", "scoped-in-2"):
            self.model[(inside, n)] = {"data": {"k": n}}
            self.set_cm((inside, n), None)
            self.kubectl("apply", "-f", self.write_yaml(n + ".yaml",
                                                        [self.mr_doc(inside, n)]))
        took, mrs, cms = self.wait_converged("namespace",
                                             ignore={(outside, "scoped-out"),
                                                     (NAMESPACES[1], "foreign-cm")})
        out = mrs[(outside, "scoped-out")]
        expect(not out["metadata"].get("finalizers") and not out.get("status")
               and (outside, "scoped-out") not in cms,
               "namespace: MyResource %s/scoped-out outside --namespace" % outside,
               "no finalizer, no status, no ConfigMap",
               json.dumps({"finalizers": out["metadata"].get("finalizers"),
                           "status": out.get("status"),
                           "configmap": (outside, "scoped-out") in cms}))
        st, body = http_json("GET", w2.url + "/status")
        ua = "mcfleet-worker/0.1.0 (e2e-worker-2; %s)" % (body or {}).get("incarnation")
        log = self.fetch_reqlog()
        mine = [e for s, e in sorted(log.items())
                if s > mark and e.get("user_agent") == ua]
        expect(mine, "namespace: worker2's requests in kubesim's log",
               "some with User-Agent %r" % ua, "none")
        stray = []
        for e in mine:
            p = e.get("path", "")
            if re.search(r"/(myresources|configmaps|events)(/|$)", p) and \
                    not p.startswith(("/api/v1/namespaces/%s/" % inside,
                                      "/apis/%s/%s/namespaces/%s/"
                                      % (GROUP, VERSION, inside))):
                stray.append("%s %s?%s" % (e.get("method"), p, e.get("query", "")))
        expect(not stray, "namespace: worker2's requests for myresources, "
               "configmaps, events", "only under namespace %s" % inside,
               "%d elsewhere: %s" % (len(stray), "; ".join(stray[:6])))
        ok("namespace", "--namespace %s: its MyResources converge (%.1f s); %s/"
           "scoped-out has no finalizer, status or ConfigMap; all %d of its "
           "requests stay in %s" % (inside, took, outside, len(mine), inside))
        self.check_sigterm(w2, "ns-sigterm")

    def run(self):
        t0 = time.monotonic()
        self.setup()
        self.check_create()
        self.check_spec()
        self.check_cm_delete()
        self.check_cm_edit()
        self.check_cm_rename()
        self.check_conflict()
        ua = self.check_metrics(self.w1)
        self.check_delete(ua)
        self.check_sigterm(self.w1, "sigterm")
        self.check_namespace_scope()
        ok("all", "myresource end to end in %.1f s" % (time.monotonic() - t0))

    def report(self):
        for w in self.workers:
            state = "running" if w.alive() else "exit %s" % w.proc.returncode
            print("---- %s (pid %d, %s) stderr, last lines ----\n%s\n---- end ----"
                  % (w.label, w.pid, state, w.stderr_tail(40)))
        if self.sim is not None and self.sim.proc is not None:
            print("---- kubesim stderr, last lines ----\n%s\n---- end ----"
                  % self.sim.stderr_tail(10))

    def cleanup(self):
        for w in self.workers:
            w.kill()
        if self.sim is not None and self.sim.proc is not None:
            rc, _ = self.sim.terminate(10 * SCALE)
            if rc is None:
                self.sim.kill()
        kill_children()
        if os.environ.get("E2E_KEEP"):
            with open(os.path.join(self.work, "requests.json"), "w") as f:
                json.dump([self.reqlog[s] for s in sorted(self.reqlog)], f, indent=0)
            print("# kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


EDITOR_SCRIPT = r'''
import json, os, sys
path = sys.argv[-1]
doc = open(path).read()
data = json.loads(os.environ["E2E_EDIT_DATA"])
lines = doc.splitlines()
out, skip, indent = [], False, None
kind = os.environ["E2E_EDIT_KIND"]
# Replace the `data:` block (a ConfigMap's top level, a MyResource's
# spec.data) with the new map.
target = "data:" if kind == "configmap" else "  data:"
for line in lines:
    if skip:
        if line.startswith(" " * (indent + 1)) or not line.strip():
            continue
        skip = False
    if line.rstrip() == target or line.startswith(target + " "):
        indent = len(line) - len(line.lstrip())
        out.append(" " * indent + "data:")
        for k, v in sorted(data.items()):
            out.append(" " * (indent + 2) + "%s: %s" % (k, json.dumps(v)))
        skip = True
        continue
    out.append(line)
open(path, "w").write("\n".join(out) + "\n")
'''


class Watchdog(Exception):
    pass


def main():
    if len(sys.argv) != 4:
        print("usage: %s KUBESIM MCFLEET_WORKER REPO_ROOT" % sys.argv[0],
              file=sys.stderr)
        return 2
    for p in sys.argv[1:3]:
        if not os.access(p, os.X_OK):
            print("FAIL setup: %s is not executable" % p)
            return 1
    if shutil.which("kubectl") is None:
        print("FAIL setup: kubectl not found")
        return 1

    def on_alarm(sig, frm):
        raise Watchdog("the whole test took longer than %d s" % WATCHDOG_T)

    def on_term(sig, frm):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(WATCHDOG_T)
    t = Test(*[os.path.abspath(a) for a in sys.argv[1:4]])
    rc = 1
    try:
        t.run()
        rc = 0
    except (Failure, Watchdog) as e:
        print("FAIL %s" % e, flush=True)
        t.report()
    except Exception:
        import traceback
        print("FAIL unexpected error:\n%s" % traceback.format_exc(), flush=True)
        t.report()
    finally:
        signal.alarm(0)
        t.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
