"""Shared pieces of the fleet end-to-end tests (tests/e2e/fleet_*_test.py).

A Fleet runs kubesim, coordinators and workers as child processes on
127.0.0.1 with short timing knobs, reads their `listening on URL (ROLE)`
lines, and offers the checks the tests share:

  - the coordinator's /status (role, leader, workers, projects);
  - project control planes: the MyResource CRD and MyResources inside each
    project, through kubesim's project prefix;
  - the single-writer checker: each worker's ownership intervals (from its
    JSON log: "engaged cluster P" to "disengaged cluster P", which the
    controller manager logs only once no reconcile of P runs) against
    kubesim's request log (server sequence and timestamps, User-Agent
    naming worker and incarnation).  Every write to a project's plane must
    fall inside its writer's interval, and no two workers' intervals for
    one project may overlap.

Every wait polls against a deadline scaled by MCF_TEST_TIMEOUT_SCALE.  Every
child is killed by its PID on the way out (and dies with the test through
PR_SET_PDEATHSIG).  E2E_KEEP=1 keeps the work directory.
"""

import atexit
import ctypes
import datetime
import json
import os
import re
import select
import shutil
import signal
import subprocess
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
START_T = 20 * SCALE
PROJ_API = "/apis/resourcemanager.miloapis.com/v1alpha1"
MR_API = "/apis/example.mcfleet.io/v1alpha1"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")


class Failure(Exception):
    pass


def expect(cond, what, expected, seen):
    if not cond:
        raise Failure("%s\n  expected: %s\n  seen:     %s"
                      % (what, expected, seen))


def ok(name, msg):
    print("ok %s %s" % (name, msg), flush=True)


def wait_until(what, fn, timeout, interval=0.2):
    """Polls fn() -> (done, detail) until done; returns seconds taken."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        done, detail = fn()
        if done:
            return time.monotonic() - t0
        if time.monotonic() >= deadline:
            raise Failure("%s: not within %.0f s\n  seen: %s"
                          % (what, timeout, detail))
        time.sleep(interval)


# ---- HTTP ------------------------------------------------------------------

def http(method, url, body=None, ctype="application/json", timeout=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": ctype,
                                          "User-Agent": "fleet-e2e"})
    try:
        with urllib.request.urlopen(req, timeout=timeout or 10 * SCALE) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


def http_json(method, url, body=None, ctype="application/json"):
    st, raw = http(method, url, body, ctype)
    try:
        return st, json.loads(raw or b"null")
    except ValueError:
        return st, raw.decode("utf-8", "replace")


def parse_ts(s):
    """RFC 3339 (with or without fraction, 'Z') -> seconds since epoch."""
    s = s.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


# ---- child processes -------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
CHILDREN = []


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_children)


class Proc:
    """A long-lived child.  Its stdout lines `listening on URL (ROLE)` are
    read at start (`roles`: the roles to wait for); stderr goes to a file."""

    def __init__(self, label, args, workdir, roles=()):
        self.label = label
        self.args = [str(a) for a in args]
        self.roles = roles
        self.errpath = os.path.join(workdir, "%s.stderr" % label)
        self.proc = None
        self.urls = {}

    def start(self):
        return self.spawn().wait_listening()

    def spawn(self):
        """Launches the process (from this thread: PR_SET_PDEATHSIG ties
        the child to the thread that forks it)."""
        errf = open(self.errpath, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=errf,
                                     preexec_fn=_die_with_parent)
        errf.close()
        CHILDREN.append(self.proc)
        return self

    def wait_listening(self):
        """Reads the `listening on URL (ROLE)` lines, bounded."""
        deadline = time.monotonic() + START_T
        buf = b""
        fd = self.proc.stdout.fileno()
        while any(r not in self.urls for r in self.roles):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s: no `listening on` line for %s within %d s"
                              " (stdout %r)\n%s" % (self.label, self.roles,
                                                    START_T, buf,
                                                    self.stderr_tail()))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                if self.proc.poll() is not None:
                    raise Failure("%s exited %s before listening\n%s"
                                  % (self.label, self.proc.returncode,
                                     self.stderr_tail()))
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise Failure("%s closed stdout (exit %s)\n%s"
                              % (self.label, self.proc.poll(),
                                 self.stderr_tail()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = re.fullmatch(r"listening on (\S+)(?: \((\w+)\))?",
                                 line.decode("utf-8", "replace"))
                expect(m is not None, "%s stdout line" % self.label,
                       "listening on URL (ROLE)", repr(line))
                self.urls[m.group(2) or ""] = m.group(1)
        return self

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

    def stderr_tail(self, n=30):
        return "--- %s stderr ---\n%s" % (
            self.label, "\n".join(self.stderr_text().splitlines()[-n:]))

    def log_lines(self):
        out = []
        for line in self.stderr_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def terminate(self, timeout):
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks()
            return None, time.monotonic() - t0
        return self.proc.returncode, time.monotonic() - t0

    def dump_stacks(self):
        """Every thread's backtrace (gdb, when installed) into the stderr
        file, so a process that does not stop can be diagnosed."""
        gdb = shutil.which("gdb")
        if gdb is None or self.proc.poll() is not None:
            return
        try:
            r = subprocess.run([gdb, "-p", str(self.proc.pid), "-batch",
                                "-ex", "thread apply all bt"],
                               capture_output=True, text=True,
                               timeout=60 * SCALE)
            print("--- %s (pid %d) did not stop; its threads:\n%s"
                  % (self.label, self.proc.pid, r.stdout[-40000:]),
                  flush=True)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---- the fleet -------------------------------------------------------------

class Fleet:
    def __init__(self, bins, name, mode="external"):
        self.bins = bins            # dict: kubesim, coordinator, worker, ctl
        self.mode = mode
        self.work = tempfile.mkdtemp(prefix="%s." % name)
        self.kc = os.path.join(self.work, "kubesim.kubeconfig")
        self.keyfile = os.path.join(self.work, "fleet.key")
        with open(self.keyfile, "w") as f:
            f.write("hex:" + os.urandom(32).hex() + "\n")
        self.sim = None
        self.coords = {}
        self.workers = {}
        self.retired = []           # stopped workers, kept for the checker
        self.reqlog = {}
        self.reqlog_since = 0
        atexit.register(self.cleanup)

    def cleanup(self):
        if os.environ.get("E2E_KEEP"):
            print("# work dir kept: %s" % self.work)
            return
        shutil.rmtree(self.work, ignore_errors=True)

    def diagnostics(self):
        parts = []
        for p in list(self.coords.values()) + list(self.workers.values()) + \
                self.retired:
            parts.append(p.stderr_tail(15))
        if self.sim:
            parts.append(self.sim.stderr_tail(10))
        return "\n".join(parts)

    # -- processes --

    def start_kubesim(self, *extra):
        self.sim = Proc("kubesim", [self.bins["kubesim"], "--listen",
                                    "127.0.0.1:0", "--kubeconfig-out",
                                    self.kc, "--project-ready-after",
                                    "300ms", "--request-log", "400000",
                                    "--history-events", "100000"] +
                        list(extra), self.work, roles=("",)).start()
        self.url = self.sim.urls[""]
        st, _ = http_json("POST", self.url + "/api/v1/namespaces",
                          {"metadata": {"name": "mcfleet-system"}})
        expect(st == 201, "create namespace mcfleet-system", 201, st)

    def start_coordinator(self, name, *extra):
        args = [self.bins["coordinator"], "--kubeconfig", self.kc,
                "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                "--key-file", self.keyfile, "--name", name,
                "--lease-duration", "3s", "--renew-deadline", "2s",
                "--retry-period", "500ms", "--disengage-grace", "2s",
                "--heartbeat-interval", "500ms", "--mode", self.mode]
        if self.mode == "internal":
            args += ["--internal-endpoint-template",
                     self.url + "/projects/{name}/control-plane"]
        p = Proc(name, args + list(extra), self.work,
                 roles=("fleet", "status")).start()
        self.coords[name] = p
        return p

    def _worker_proc(self, name, extra):
        return Proc(name, [self.bins["worker"], "--kubeconfig", self.kc,
                           "--name", name, "--http", "127.0.0.1:0",
                           "--key-file", self.keyfile, "--lease-duration",
                           "3s", "--renew-period", "1s",
                           "--heartbeat-interval", "500ms",
                           "--drain-timeout", "20s",
                           "--watch-timeout", "30s"] + list(extra),
                    self.work, roles=("status",))

    def start_worker(self, name, *extra):
        p = self._worker_proc(name, extra).start()
        self.workers[name] = p
        return p

    def start_workers(self, names, *extra):
        """Launches every worker at once, then waits for each to listen
        (a cold start)."""
        ps = [self._worker_proc(n, extra).spawn() for n in names]
        for n, p in zip(names, ps):
            self.workers[n] = p.wait_listening()
        return ps

    def retire(self, name):
        self.retired.append(self.workers.pop(name))

    # -- the core API and project planes --

    def create_project(self, name, labels=None):
        body = {"apiVersion": "resourcemanager.miloapis.com/v1alpha1",
                "kind": "Project", "metadata": {"name": name},
                "spec": {"ownerRef": {"kind": "Organization",
                                      "name": "org"}}}
        if labels:
            body["metadata"]["labels"] = labels
        st, b = http_json("POST", self.url + PROJ_API + "/projects", body)
        expect(st == 201, "create Project %s" % name, 201, "%s %r" % (st, b))

    def delete_project(self, name):
        st, b = http_json("DELETE", self.url + PROJ_API + "/projects/" + name)
        expect(st in (200, 202), "delete Project %s" % name, "200/202",
               "%s %r" % (st, b))

    def set_project_ready(self, name, status):
        """Sets the condition the provider of this mode reads: the
        Project's Ready (external) or the ProjectControlPlane's
        ControlPlaneReady (internal)."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        ctype = "Ready" if self.mode == "external" else "ControlPlaneReady"
        patch = {"status": {"conditions": [{
            "type": ctype, "status": status, "reason":
            "Ready" if status == "True" else "Provisioning",
            "message": "set by the test", "lastTransitionTime": now}]}}
        path = (PROJ_API + "/projects/%s/status" if self.mode == "external"
                else "/apis/infrastructure.miloapis.com/v1alpha1/"
                     "projectcontrolplanes/%s/status") % name
        st, b = http_json("PATCH", self.url + path, patch,
                          "application/merge-patch+json")
        expect(st == 200, "patch Project %s status" % name, 200,
               "%s %r" % (st, b))

    def plane(self, project):
        return "%s%s/projects/%s/control-plane" % (self.url, PROJ_API, project)

    def install_crd(self, project):
        import yaml  # Debian's python3-yaml, a dependency of python3-kubernetes
        with open(os.path.join(self.bins["root"], "deploy", "crds",
                               "myresources.example.mcfleet.io.yaml")) as f:
            crd = yaml.safe_load(f)
        st, b = http_json("POST", self.plane(project) +
                          "/apis/apiextensions.k8s.io/v1/"
                          "customresourcedefinitions", crd)
        expect(st in (201, 409), "install the MyResource CRD in %s" % project,
               201, "%s %r" % (st, str(b)[:300]))

    def create_mr(self, project, name, data):
        body = {"apiVersion": "example.mcfleet.io/v1alpha1",
                "kind": "MyResource",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"data": data}}
        st, b = http_json("POST", self.plane(project) + MR_API +
                          "/namespaces/default/myresources", body)
        expect(st == 201, "create MyResource %s/%s" % (project, name), 201,
               "%s %r" % (st, str(b)[:300]))

    def patch_mr(self, project, name, data):
        st, b = http_json("PATCH", self.plane(project) + MR_API +
                          "/namespaces/default/myresources/" + name,
                          {"spec": {"data": data}},
                          "application/merge-patch+json")
        expect(st == 200, "patch MyResource %s/%s" % (project, name), 200,
               "%s %r" % (st, str(b)[:300]))

    def mr_converged(self, project, name, data):
        """(done, detail): the MyResource is Ready at its generation and its
        ConfigMap holds `data`."""
        st, mr = http_json("GET", self.plane(project) + MR_API +
                           "/namespaces/default/myresources/" + name)
        if st != 200:
            return False, "GET MyResource: %s" % st
        gen = mr["metadata"].get("generation")
        conds = (mr.get("status") or {}).get("conditions") or []
        ready = [c for c in conds if c.get("type") == "Ready"]
        if not ready or ready[0].get("status") != "True" or \
                ready[0].get("observedGeneration") != gen:
            return False, "Ready %r at generation %s" % (ready, gen)
        st, cm = http_json("GET", self.plane(project) +
                           "/api/v1/namespaces/default/configmaps/" + name)
        if st != 200 or (cm.get("data") or {}) != data:
            return False, "ConfigMap %s: %s %r" % (name, st,
                                                   (cm or {}).get("data")
                                                   if st == 200 else "")
        return True, "ok"

    # -- status --

    def coord_status(self, name):
        st, doc = http_json("GET", self.coords[name].urls["status"] +
                            "/status")
        return doc if st == 200 and isinstance(doc, dict) else None

    def leader(self):
        """The name of the coordinator whose /status says leader, or None."""
        for n, p in self.coords.items():
            if not p.alive():
                continue
            doc = self.coord_status(n)
            if doc and doc.get("role") == "leader":
                return n
        return None

    def wait_leader(self, timeout):
        found = {}

        def f():
            found["l"] = self.leader()
            return found["l"] is not None, "no coordinator says leader"
        wait_until("a coordinator leads", f, timeout)
        return found["l"]

    def projects_state(self):
        l = self.leader()
        if l is None:
            return None
        doc = self.coord_status(l)
        if doc is None:
            return None
        return {p["name"]: p for p in doc.get("projects", [])}

    def wait_all_synced(self, names, timeout, owners_among=None):
        """Every project in `names` owned (by one of `owners_among` when
        given) and synced; no other project listed as owned."""
        seen = {}

        def f():
            ps = self.projects_state()
            if ps is None:
                return False, "no leader status"
            seen["ps"] = ps
            bad = []
            for n in names:
                p = ps.get(n)
                if p is None or p.get("state") != "synced" or \
                        not p.get("owner") or \
                        (owners_among and p["owner"] not in owners_among):
                    bad.append((n, p and p.get("owner"),
                                p and p.get("state"), p and p.get("reason")))
            return not bad, "not synced: %r" % bad[:8]
        t = wait_until("projects owned and synced", f, timeout)
        return t, seen["ps"]

    def wait_settled(self, names, timeout, owners_among=None):
        """wait_all_synced, and every project in `names` owned by its
        desired owner (no move pending or under way), so that owners read
        now are the sharder's answer and not a step of a rebalance.
        Returns (seconds, {project: owner})."""
        seen = {}

        def f():
            ps = self.projects_state()
            if ps is None:
                return False, "no leader status"
            bad = []
            for n in names:
                p = ps.get(n) or {}
                if p.get("state") != "synced" or not p.get("owner") or \
                        p.get("owner") != p.get("desired") or \
                        (owners_among and p["owner"] not in owners_among):
                    bad.append((n, p.get("owner"), p.get("desired"),
                                p.get("state"), p.get("reason")))
            seen["o"] = {n: (ps.get(n) or {}).get("owner") for n in names}
            return not bad, "not settled (name, owner, desired, state, " \
                "reason): %r" % bad[:8]
        t = wait_until("projects settled on their desired owners", f,
                       timeout)
        return t, seen["o"]

    def owners(self):
        ps = self.projects_state() or {}
        return {n: p.get("owner") for n, p in ps.items()}

    def worker_status(self, name):
        st, doc = http_json("GET", self.workers[name].urls["status"] +
                            "/status")
        return doc if st == 200 else None

    # -- the single-writer checker --

    def fetch_reqlog(self):
        """Everything logged since the last fetch (one GET returns all of
        it; the GET itself is logged too, so do not loop until empty)."""
        st, body = http_json("GET", "%s/_sim/requests?since=%d"
                             % (self.url, self.reqlog_since))
        expect(st == 200 and isinstance(body, dict), "GET /_sim/requests",
               200, st)
        for e in body.get("items", []):
            s = int(e.get("seq", 0))
            self.reqlog[s] = e
            self.reqlog_since = max(self.reqlog_since, s)
        return self.reqlog

    def ownership_intervals(self):
        """{(project, worker, incarnation): [(start_s, end_s or None)]}
        from the workers' logs."""
        out = {}
        for p in list(self.workers.values()) + self.retired:
            for rec in p.log_lines():
                msg = rec.get("msg", "")
                m = re.match(r"(engaged|disengaged) cluster (\S+)", msg)
                if not m:
                    continue
                key = (m.group(2), rec.get("worker"), rec.get("incarnation"))
                t = parse_ts(rec["ts"])
                ivs = out.setdefault(key, [])
                if m.group(1) == "engaged":
                    ivs.append([t, None])
                elif ivs and ivs[-1][1] is None:
                    ivs[-1][1] = t
            # A process that died keeps its open intervals open until its
            # death; the caller closes them with the kill time.
        return out

    def check_single_writer(self, killed=None):
        """Raises Failure on a write outside its writer's interval or on
        overlapping intervals.  `killed`: {(worker, incarnation): time of
        kill -9} closes intervals a killed process left open.  Returns the
        number of project-plane writes checked."""
        killed = killed or {}
        ivs = self.ownership_intervals()
        for (proj, w, inc), lst in ivs.items():
            for iv in lst:
                if iv[1] is None and (w, inc) in killed:
                    iv[1] = killed[(w, inc)]
        # No two workers' intervals for one project overlap.
        byproj = {}
        for (proj, w, inc), lst in ivs.items():
            for a, b in lst:
                byproj.setdefault(proj, []).append((a, b, w, inc))
        for proj, lst in byproj.items():
            lst.sort(key=lambda x: x[0])
            for i in range(1, len(lst)):
                pa, pb, pw, pi = lst[i - 1]
                ca, cb, cw, ci = lst[i]
                if (pw, pi) != (cw, ci) and (pb is None or pb > ca):
                    raise Failure("project %s: %s/%s owned it until %s but "
                                  "%s/%s engaged it at %s" %
                                  (proj, pw, pi, pb, cw, ci, ca))
        # Every write to a project plane inside its writer's interval.
        log = self.fetch_reqlog()
        n = 0
        for e in log.values():
            if e.get("method") not in WRITE_METHODS:
                continue
            plane = e.get("plane") or ""
            ua = e.get("user_agent") or ""
            m = re.match(r"mcfleet-worker/\S+ \((\S+); (\S+)\)", ua)
            if not plane or not m:
                continue
            w, inc = m.group(1), m.group(2)
            t = parse_ts(e["time"])
            lst = ivs.get((plane, w, inc), [])
            # 50 ms for the clocks of log lines and server timestamps.
            inside = any(a - 0.05 <= t and (b is None or t <= b + 0.05)
                         for a, b in lst)
            if not inside:
                raise Failure("write %s %s to project %s by %s/%s at %s is "
                              "outside its ownership intervals %r" %
                              (e.get("method"), e.get("path"), plane, w, inc,
                               e["time"], lst))
            n += 1
        return n
