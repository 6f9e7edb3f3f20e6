#!/usr/bin/python3
"""Leader election end to end: two standalone workers against kubesim.

Usage: /usr/bin/python3 tests/e2e/leaderelect_test.py KUBESIM WORKER REPO_ROOT

Two `mcfleet-worker --standalone --leader-elect` processes (A, B) share the
Lease mcfleet-system/e2e-leader with short knobs (lease 3s, renew 2s,
retry 500ms) while the test keeps a steady churn of MyResource spec
changes (a merge patch straight to kubesim every ~50 ms) that the leader
must answer with ConfigMap, status and Event writes.

  initial   exactly one leads: the Lease holder (kubectl get lease -o json)
            agrees with both workers' /status (leader.is_leader,
            reconciling, leader.identity); only the leader writes;
  kill      kill -9 the leader: the other holds the Lease and writes within
            2.5 x (lease + 2 x retry); it did not take over earlier than a
            lease duration after the dead leader's last renewal;
  restart   the killed worker comes back (same name, new incarnation) as a
            standby;
  sigterm   SIGTERM the leader: it exits 0, releases the Lease (holder ""
            seen, or a takeover faster than an unreleased Lease allows),
            and the standby takes over at its next retry, within
            2.5 x (retry + 0.5 s);
  converge  churn stops: every MyResource converges under the last leader;
  single    "never both lead", judged from kubesim's request log alone:
            every write of a worker to myresources, configmaps or events
            (attributed by User-Agent, which names worker and incarnation)
            comes after a successful Lease write of that same incarnation
            with no other incarnation's successful Lease write in between;
            the writers form exactly one run per leadership term (A, B,
            A'), each term wrote, and each new leader's first write follows
            the old leader's last;
  stop      the last leader exits 0 on SIGTERM and leaves the Lease released.

Deadlines scale with MCF_TEST_TIMEOUT_SCALE (a positive integer).  Each
check prints `ok NAME ...`; a failure prints expected vs seen and the tails
of the workers' stderr, and exits 1.  Children are killed by PID on exit.
E2E_KEEP=1 keeps the work directory.
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
import sys
import tempfile
import threading
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
KUBECTL_T = 60 * SCALE
START_T = 20 * SCALE
READY_T = 30 * SCALE
CONVERGE_T = 60 * SCALE
STOP_T = 15 * SCALE
WATCHDOG_T = 270 * SCALE     # the whole test (ctest allows 300 x scale)

LEASE_S, RENEW_S, RETRY_S = 3.0, 2.0, 0.5
JITTER = 1.2            # client-go's JitterFactor for the acquire loop
KILL_BOUND = 2.5 * (LEASE_S + 2 * RETRY_S) * SCALE
TERM_BOUND = 2.5 * (RETRY_S + 0.5) * SCALE
CHURN_PERIOD = 0.05

GROUP, VERSION = "example.mcfleet.io", "v1alpha1"
MR_RES = "myresources.%s" % GROUP
LE_NS, LE_NAME = "mcfleet-system", "e2e-leader"
NS = "e2e-le"
N_MR = 24
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % LE_NS
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
RECONCILE_PATH = re.compile(r"/(myresources|configmaps|events)(/|$)")


class Failure(Exception):
    pass


class Watchdog(Exception):
    pass


def expect(cond, what, expected, seen):
    if not cond:
        raise Failure("%s\n  expected: %s\n  seen:     %s" % (what, expected, seen))


def ok(name, msg):
    print("ok %s %s" % (name, msg), flush=True)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# ---- child processes ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Children are spawned from the main thread only (the signal follows
    # the thread that forked).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


CHILDREN = []


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
    """A long-lived child: first stdout line `listening on URL[ (ROLE)]`,
    stderr into a file."""

    def __init__(self, label, args, workdir, role=None):
        self.label = label
        self.args = args
        self.role = role
        self.errpath = os.path.join(workdir, "%s.stderr" % label)
        self.proc = None
        self.url = None
        self.extra_stdout = b""

    def start(self):
        assert threading.current_thread() is threading.main_thread()
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
                    raise Failure("%s exited with %s before listening"
                                  % (self.label, self.proc.returncode))
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                try:
                    self.proc.wait(timeout=2 * SCALE)
                except subprocess.TimeoutExpired:
                    pass
                raise Failure("%s closed stdout before listening (exit %s)"
                              % (self.label, self.proc.poll()))
            buf += chunk
        line, self.extra_stdout = buf.split(b"\n", 1)
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
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        return self.proc.returncode, time.monotonic() - t0

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---- HTTP ----------------------------------------------------------------------

def http(method, url, body=None, ctype="application/json", ua="e2e-test",
         timeout=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": ctype,
                                          "User-Agent": ua})
    try:
        with urllib.request.urlopen(req, timeout=timeout or 10 * SCALE) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


def http_json(method, url, body=None, **kw):
    st, raw = http(method, url, body, **kw)
    try:
        return st, json.loads(raw or b"null")
    except ValueError:
        return st, raw.decode("utf-8", "replace")


# ---- background observers ------------------------------------------------------

class Churn(threading.Thread):
    """Merge-patches one MyResource's spec.data every CHURN_PERIOD, round
    robin, so whoever leads has writes to make."""

    def __init__(self, sim_url):
        super().__init__(daemon=True)
        self.url = sim_url
        self.stop_ev = threading.Event()
        self.n = 0
        self.errors = []

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            name = "mr-%02d" % (i % N_MR)
            i += 1
            path = "%s/apis/%s/%s/namespaces/%s/myresources/%s" % (
                self.url, GROUP, VERSION, NS, name)
            st, raw = http("PATCH", path, {"spec": {"data": {"tick": str(i)}}},
                           ctype="application/merge-patch+json", ua="e2e-churn")
            if st == 200:
                self.n += 1
            elif len(self.errors) < 20:
                self.errors.append("%s %s" % (st, raw[:200]))
            self.stop_ev.wait(CHURN_PERIOD)

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=10 * SCALE)


class LeasePoller(threading.Thread):
    """GETs the Lease every 20 ms and records each distinct record with the
    wall time it was first seen."""

    def __init__(self, sim_url):
        super().__init__(daemon=True)
        self.url = "%s%s/%s" % (sim_url, LEASE_PATH, LE_NAME)
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.seen = []      # (time, holder, leaseDurationSeconds, transitions)

    def run(self):
        last = None
        while not self.stop_ev.is_set():
            st, body = http_json("GET", self.url, ua="e2e-lease-poller")
            if st == 200 and isinstance(body, dict):
                sp = body.get("spec") or {}
                rec = (sp.get("holderIdentity"), sp.get("leaseDurationSeconds"),
                       sp.get("leaseTransitions"))
                if rec != last:
                    with self.lock:
                        self.seen.append((time.time(),) + rec)
                    last = rec
            self.stop_ev.wait(0.02)

    def since(self, t):
        with self.lock:
            return [s for s in self.seen if s[0] >= t]

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=10 * SCALE)


# ---- the test ------------------------------------------------------------------

class Test:
    def __init__(self, kubesim, worker, root):
        self.kubesim_bin = kubesim
        self.worker_bin = worker
        self.root = root
        self.work = tempfile.mkdtemp(prefix="e2e_leaderelect.")
        self.kc = os.path.join(self.work, "kubesim.kubeconfig")
        self.sim = None
        self.workers = []
        self.reqlog = {}
        self.reqlog_since = 0
        self.churn = None
        self.poller = None
        self.ua = {}            # label -> User-Agent

    # -- tools --

    def kubectl(self, *args, check=True):
        cache = tempfile.mkdtemp(prefix="kc.", dir=self.work)
        cmd = ["kubectl", "--kubeconfig", self.kc, "--cache-dir", cache] + \
            [str(a) for a in args]
        e = dict(os.environ)
        e.pop("KUBECONFIG", None)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=KUBECTL_T, env=e)
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

    def lease(self):
        """The Lease's spec by kubectl, or None when it does not exist."""
        r = self.kubectl("get", "lease", LE_NAME, "-n", LE_NS, "-o", "json",
                         check=False)
        if r.returncode != 0:
            if "NotFound" in r.stderr or "not found" in r.stderr:
                return None
            raise Failure("kubectl get lease: exit %d: %s"
                          % (r.returncode, r.stderr.strip()[-500:]))
        return json.loads(r.stdout).get("spec") or {}

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

    def reconcile_writes(self, after=0, ua=None):
        out = []
        for s in sorted(self.reqlog):
            e = self.reqlog[s]
            if s <= after or e.get("method") not in WRITE_METHODS:
                continue
            u = e.get("user_agent", "")
            if not u.startswith("mcfleet-worker/") or (ua and u != ua):
                continue
            if RECONCILE_PATH.search(e.get("path", "")):
                out.append(e)
        return out

    def lease_writes(self, after=0, ua=None):
        """Successful Lease writes by workers."""
        out = []
        for s in sorted(self.reqlog):
            e = self.reqlog[s]
            if s <= after or e.get("method") not in ("POST", "PUT", "PATCH"):
                continue
            u = e.get("user_agent", "")
            if not u.startswith("mcfleet-worker/") or (ua and u != ua):
                continue
            p = e.get("path", "")
            if p not in (LEASE_PATH, "%s/%s" % (LEASE_PATH, LE_NAME)):
                continue
            if e.get("status") in (200, 201):
                out.append(e)
        return out

    def wait_until(self, what, fn, timeout, interval=0.1):
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            done, detail = fn()
            if done:
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                raise Failure("%s: not within %.1f s\n  seen: %s"
                              % (what, timeout, detail))
            time.sleep(interval)

    def status(self, w):
        st, body = http_json("GET", w.url + "/status", timeout=5 * SCALE)
        expect(st == 200 and isinstance(body, dict), "GET %s/status" % w.label,
               "200 JSON", "%s %r" % (st, str(body)[:300]))
        return body

    # -- processes --

    def start_kubesim(self):
        self.sim = Proc("kubesim", [self.kubesim_bin, "--listen", "127.0.0.1:0",
                                    "--kubeconfig-out", self.kc,
                                    "--request-log", "200000"], self.work)
        self.sim.start()

    def start_worker(self, label, name):
        w = Proc(label, [self.worker_bin, "--standalone", "--kubeconfig", self.kc,
                         "--http", "127.0.0.1:0", "--name", name, "--resync", "0s",
                         "--leader-elect", "--leader-elect-namespace", LE_NS,
                         "--leader-elect-name", LE_NAME,
                         "--lease-duration", "3s", "--renew-deadline", "2s",
                         "--retry-period", "500ms"], self.work, role="status")
        w.name = name
        self.workers.append(w)
        w.start()

        def ready():
            if not w.alive():
                raise Failure("%s exited with %s while starting"
                              % (label, w.proc.returncode))
            st, body = http("GET", w.url + "/readyz", timeout=5 * SCALE)
            return st == 200, "/readyz %s %r" % (st, body[:200])
        self.wait_until("%s /readyz" % label, ready, READY_T)
        body = self.status(w)
        w.incarnation = body.get("incarnation")
        expect(body.get("name") == name and w.incarnation
               and isinstance(body.get("leader"), dict),
               "%s /status" % label, "name %s, an incarnation, leader {...}" % name,
               json.dumps(body)[:400])
        w.ua = "mcfleet-worker/0.1.0 (%s; %s)" % (name, w.incarnation)
        return w

    def expect_exit0(self, w, check):
        rc, took = w.terminate(STOP_T)
        expect(rc is not None, "%s: SIGTERM to %s (pid %d)" % (check, w.label, w.pid),
               "exit within %d s" % STOP_T, "still running")
        err = w.stderr_text()
        marks = [m for m in SANITIZER_MARKS if m in err]
        expect(rc == 0 and not marks, "%s: %s's exit after SIGTERM" % (check, w.label),
               "status 0, no sanitizer report", "status %s, marks %r" % (rc, marks))
        return took

    # -- checks --

    def setup(self):
        self.start_kubesim()
        crd = os.path.join(self.root, "deploy", "crds",
                           "myresources.example.mcfleet.io.yaml")
        self.kubectl("apply", "-f", crd)
        # kubesim does not create namespaces on demand (KUBE_API.md §2).
        self.kubectl("create", "namespace", LE_NS)
        self.kubectl("create", "namespace", NS)
        path = os.path.join(self.work, "mrs.yaml")
        with open(path, "w") as f:
            for i in range(N_MR):
                f.write("---\n" + json.dumps({
                    "apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "MyResource",
                    "metadata": {"name": "mr-%02d" % i, "namespace": NS},
                    "spec": {"data": {"tick": "0"}}}) + "\n")
        self.kubectl("apply", "-f", path)
        self.poller = LeasePoller(self.sim.url)
        self.poller.start()
        ok("setup", "kubesim %s, CRD, namespaces %s and %s, %d MyResources"
           % (self.sim.url, LE_NS, NS, N_MR))

    def leader_state(self, cands):
        """(holder name, leader Proc or None, detail) once the Lease and
        every candidate's /status agree, else (None, None, detail)."""
        sp = self.lease()
        holder = (sp or {}).get("holderIdentity")
        sts = {w.label: self.status(w) for w in cands}
        detail = "lease holder %r; %s" % (holder, "; ".join(
            "%s: is_leader %s reconciling %s identity %r" % (
                lbl, (s.get("leader") or {}).get("is_leader"), s.get("reconciling"),
                (s.get("leader") or {}).get("identity")) for lbl, s in sts.items()))
        leaders = [w for w in cands if (sts[w.label].get("leader") or {}).get("is_leader")]
        if len(leaders) > 1:
            raise Failure("more than one worker says it leads: %s" % detail)
        if not holder or len(leaders) != 1 or leaders[0].name != holder:
            return None, None, detail
        for w in cands:
            s = sts[w.label]
            lead = w is leaders[0]
            if s.get("reconciling") is not lead or \
                    (s.get("leader") or {}).get("identity") != holder:
                return None, None, detail
        return holder, leaders[0], detail

    def wait_writes(self, w, after, n):
        def fn():
            self.fetch_reqlog()
            got = len(self.reconcile_writes(after, w.ua))
            return got >= n, "%d reconcile writes by %s" % (got, w.ua)
        self.wait_until("%s writes" % w.label, fn, CONVERGE_T)

    def check_initial(self):
        a = self.start_worker("A", "e2e-le-a")
        b = self.start_worker("B", "e2e-le-b")
        self.churn = Churn(self.sim.url)
        self.churn.start()
        res = {}

        def one_leads():
            h, w, d = self.leader_state([a, b])
            res["w"] = w
            return w is not None, d
        took = self.wait_until("initial: exactly one leader", one_leads, CONVERGE_T, 0.2)
        leader = res["w"]
        other = b if leader is a else a
        self.wait_writes(leader, 0, 20)

        def renewing():
            self.fetch_reqlog()
            n = len(self.lease_writes(0, leader.ua))
            return n >= 3, "%d successful Lease writes by %s" % (n, leader.label)
        self.wait_until("initial: %s renews its Lease" % leader.label, renewing,
                        CONVERGE_T)
        stray = self.reconcile_writes(0, other.ua)
        expect(not stray, "initial: writes by the standby %s" % other.label, "none",
               "%d, first %r" % (len(stray), stray[:1]))
        ok("initial", "%s (%s) leads %.1f s after both were ready; %s is standby, "
           "/status and the Lease agree; the leader renews and alone writes"
           % (leader.label, leader.name, took, other.label))
        return leader, other

    def check_kill(self, leader, other):
        self.fetch_reqlog()
        mark = self.reqlog_since
        t_kill = time.time()
        leader.kill9()
        got = {}

        def taken():
            self.fetch_reqlog()
            if "lease" not in got:
                for s in self.poller.since(t_kill):
                    if s[1] == other.name:
                        got["lease"] = s[0]
                        break
            wr = self.reconcile_writes(mark, other.ua)
            if wr and "write" not in got:
                got["write"] = parse_time(wr[0]["time"])
            return ("lease" in got and "write" in got,
                    "lease records since the kill %r; %d writes by %s"
                    % (self.poller.since(t_kill)[-4:], len(wr), other.label))
        self.wait_until("kill: %s takes over after kill -9 of %s"
                        % (other.label, leader.label), taken, KILL_BOUND + 5 * SCALE,
                        0.05)
        observed = max(got["lease"], got["write"]) - t_kill
        sp = self.lease()
        expect(sp and sp.get("holderIdentity") == other.name,
               "kill: kubectl get lease holderIdentity", other.name, sp)
        st = self.status(other)
        expect((st.get("leader") or {}).get("is_leader") is True
               and st.get("reconciling") is True, "kill: %s /status" % other.label,
               "is_leader true, reconciling true",
               json.dumps({k: st.get(k) for k in ("leader", "reconciling")}))
        expect(observed <= KILL_BOUND, "kill: time from kill -9 until the Lease "
               "names %s and it writes" % other.label,
               "<= %.1f s (2.5 x (lease + 2 x retry))" % KILL_BOUND, "%.2f s" % observed)
        # Safety: not before a lease duration after the dead one's last renewal.
        old = self.lease_writes(0, leader.ua)
        acq = self.lease_writes(mark, other.ua)
        expect(old and acq, "kill: Lease writes in kubesim's log",
               "renewals by %s, an acquisition by %s" % (leader.label, other.label),
               "%d and %d" % (len(old), len(acq)))
        gap = parse_time(acq[0]["time"]) - parse_time(old[-1]["time"])
        expect(gap >= LEASE_S - 0.01, "kill: %s's acquisition after %s's last renewal"
               % (other.label, leader.label), ">= the lease duration %.1f s" % LEASE_S,
               "%.3f s (seq %s after seq %s)" % (gap, acq[0]["seq"], old[-1]["seq"]))
        nominal = LEASE_S + 2 * (1 + JITTER) * RETRY_S
        ok("kill", "kill -9 %s: %s holds the Lease and writes %.2f s later (server: "
           "acquired %.2f s after the kill, %.2f s after the last renewal; nominal "
           "worst case %.1f s, bound %.1f s)"
           % (leader.label, other.label, observed,
              parse_time(acq[0]["time"]) - t_kill, gap, nominal, KILL_BOUND))
        return other

    def check_restart(self, killed, leader):
        again = self.start_worker("A2" if killed.label == "A" else "B2", killed.name)
        expect(again.incarnation != killed.incarnation,
               "restart: %s's new incarnation" % again.label,
               "different from %s" % killed.incarnation, again.incarnation)

        def standby():
            h, w, d = self.leader_state([again, leader])
            return w is leader, d
        self.wait_until("restart: %s standby, %s leads" % (again.label, leader.label),
                        standby, CONVERGE_T, 0.2)
        # It must be campaigning: a GET of the Lease with its User-Agent.
        def campaigning():
            self.fetch_reqlog()
            n = [e for e in self.reqlog.values() if e.get("user_agent") == again.ua
                 and e.get("path", "").startswith(LEASE_PATH)]
            return len(n) >= 2, "%d Lease requests by %s" % (len(n), again.ua)
        self.wait_until("restart: %s campaigns" % again.label, campaigning,
                        CONVERGE_T, 0.1)
        ok("restart", "%s restarted as %s (incarnation %s, was %s): standby, "
           "campaigning, %s still leads" % (killed.name, again.label,
                                            again.incarnation, killed.incarnation,
                                            leader.label))
        return again

    def check_sigterm(self, leader, standby):
        self.fetch_reqlog()
        mark = self.reqlog_since
        n_before = len(self.reconcile_writes(0, leader.ua))
        expect(n_before > 0, "sigterm: %s's writes while leading" % leader.label,
               "some", "none")
        t_term = time.time()
        took = self.expect_exit0(leader, "sigterm")
        got = {}

        def taken():
            self.fetch_reqlog()
            if "lease" not in got:
                for s in self.poller.since(t_term):
                    if s[1] == standby.name:
                        got["lease"] = s[0]
                        break
            wr = self.reconcile_writes(mark, standby.ua)
            if wr and "write" not in got:
                got["write"] = parse_time(wr[0]["time"])
            return ("lease" in got and "write" in got,
                    "lease records since SIGTERM %r; %d writes by %s"
                    % (self.poller.since(t_term)[-4:], len(wr), standby.label))
        self.wait_until("sigterm: %s takes over" % standby.label, taken,
                        TERM_BOUND + 5 * SCALE, 0.05)
        observed = max(got["lease"], got["write"]) - t_term
        acq = self.lease_writes(mark, standby.ua)
        expect(acq, "sigterm: %s's acquisition in kubesim's log" % standby.label,
               "a 2xx Lease write", "none")
        server = parse_time(acq[0]["time"]) - t_term
        sp = self.lease()
        expect(sp and sp.get("holderIdentity") == standby.name,
               "sigterm: kubectl get lease holderIdentity", standby.name, sp)
        released = [s for s in self.poller.since(t_term)
                    if s[1] in ("", None) or s[2] == 1]
        fast = server < LEASE_S - (1 + JITTER) * RETRY_S
        expect(released or fast, "sigterm: %s released the Lease" % leader.label,
               "holderIdentity \"\" / leaseDurationSeconds 1 seen, or a takeover "
               "faster than %.1f s" % (LEASE_S - (1 + JITTER) * RETRY_S),
               "records %r, takeover %.2f s" % (self.poller.since(t_term)[:5], server))
        expect(observed <= TERM_BOUND, "sigterm: time from SIGTERM until the Lease "
               "names %s and it writes" % standby.label,
               "<= %.1f s (2.5 x (retry + 0.5 s))" % TERM_BOUND, "%.2f s" % observed)
        ok("sigterm", "SIGTERM %s: exit 0 in %.2f s, Lease released (%s); %s took "
           "over %.2f s after the signal (server %.2f s; bound %.1f s)"
           % (leader.label, took, "holder \"\" seen" if released else
              "takeover faster than an unreleased Lease allows", standby.label,
              observed, server, TERM_BOUND))
        return standby

    def check_converge(self, leader):
        self.churn.stop()
        expect(self.churn.n > 0 and not self.churn.errors,
               "churn: merge patches to kubesim", "all 200",
               "%d ok, errors %r" % (self.churn.n, self.churn.errors[:3]))

        def converged():
            mrs = {o["metadata"]["name"]: o for o in json.loads(self.kubectl(
                "get", MR_RES, "-n", NS, "-o", "json").stdout)["items"]}
            cms = {o["metadata"]["name"]: o for o in json.loads(self.kubectl(
                "get", "configmaps", "-n", NS, "-o", "json").stdout)["items"]}
            bad = []
            for i in range(N_MR):
                n = "mr-%02d" % i
                mr = mrs.get(n)
                if mr is None:
                    bad.append("%s missing" % n)
                    continue
                gen = mr["metadata"].get("generation")
                st = mr.get("status") or {}
                rd = [c for c in st.get("conditions") or [] if c.get("type") == "Ready"]
                cm = cms.get(n)
                if not (rd and rd[0].get("status") == "True"
                        and rd[0].get("observedGeneration") == gen
                        and st.get("observedGeneration") == gen):
                    bad.append("%s: generation %s, Ready %r" % (n, gen, rd))
                elif cm is None or (cm.get("data") or {}) != mr["spec"].get("data"):
                    bad.append("%s: ConfigMap %r, spec.data %r"
                               % (n, cm and cm.get("data"), mr["spec"].get("data")))
            return not bad, "%d not converged: %s" % (len(bad), "; ".join(bad[:6]))
        took = self.wait_until("converge: all MyResources under %s" % leader.label,
                               converged, CONVERGE_T, 0.3)
        ok("converge", "churn stopped after %d spec patches; all %d MyResources "
           "converged under %s (%.1f s)" % (self.churn.n, N_MR, leader.label, took))

    def check_single_writer(self, terms_expected):
        """terms_expected: the Procs in leadership order."""
        self.fetch_reqlog()
        lw = self.lease_writes()
        rw = self.reconcile_writes()
        name = {w.ua: w.label for w in self.workers}
        # Leadership terms: runs of successful Lease writes by one incarnation.
        terms = []
        for e in lw:
            if not terms or terms[-1][0] != e["user_agent"]:
                terms.append([e["user_agent"], e["seq"], e["seq"]])
            else:
                terms[-1][2] = e["seq"]
        want = [w.ua for w in terms_expected]
        expect([t[0] for t in terms] == want, "single: leadership terms from the "
               "successful Lease writes in kubesim's log",
               " -> ".join(name.get(u, u) for u in want),
               " -> ".join(name.get(t[0], t[0]) for t in terms))
        # Every write comes from the incarnation whose Lease write is the
        # latest before it.
        bad = []
        li = 0
        current = None
        for e in rw:
            while li < len(lw) and lw[li]["seq"] < e["seq"]:
                current = lw[li]["user_agent"]
                li += 1
            if e["user_agent"] != current:
                bad.append("seq %s %s %s %s by %s, %s"
                           % (e["seq"], e["time"], e["method"], e["path"],
                              name.get(e["user_agent"], e["user_agent"]),
                              "before any Lease write" if current is None else
                              "while the Lease was %s's" % name.get(current, current)))
        expect(not bad, "single: each reconcile write comes from the current Lease "
               "holder (kubesim's log)", "no exceptions",
               "%d, e.g. %s" % (len(bad), "; ".join(bad[:5])))
        runs = []
        for e in rw:
            if not runs or runs[-1][0] != e["user_agent"]:
                runs.append([e["user_agent"], e["seq"], e["seq"], 0, e["time"], e["time"]])
            runs[-1][2] = e["seq"]
            runs[-1][3] += 1
            runs[-1][5] = e["time"]
        desc = ", ".join("%s x%d (seq %d-%d)" % (name.get(r[0], r[0]), r[3], r[1], r[2])
                         for r in runs)
        expect(len(runs) <= len(terms), "single: runs of writers in seq order",
               "<= %d (transitions + 1)" % len(terms), "%d: %s" % (len(runs), desc))
        expect([r[0] for r in runs] == want, "single: every term wrote, in order",
               " -> ".join(name.get(u, u) for u in want), desc)
        for i in range(1, len(terms)):
            old, new = runs[i - 1], runs[i]
            acq = terms[i][1]
            expect(old[2] < acq <= new[1], "single: transition %s -> %s"
                   % (name[old[0]], name[new[0]]),
                   "old's last write < new's Lease acquisition <= new's first write",
                   "last write seq %d, acquisition seq %d, first write seq %d"
                   % (old[2], acq, new[1]))
        ok("single", "never both lead (kubesim's log, %d reconcile writes, %d Lease "
           "writes): %s" % (len(rw), len(lw), desc))

    def check_stop(self, leader):
        took = self.expect_exit0(leader, "stop")
        sp = self.lease()
        expect(sp is not None and sp.get("holderIdentity") in ("", None),
               "stop: the Lease after the last leader's SIGTERM",
               "holderIdentity \"\" (released)", sp)
        ok("stop", "SIGTERM %s: exit 0 in %.2f s, Lease released (holderIdentity "
           "\"\", leaseDurationSeconds %s)" % (leader.label, took,
                                             sp.get("leaseDurationSeconds")))

    def run(self):
        t0 = time.monotonic()
        self.setup()
        first, second = self.check_initial()
        leader = self.check_kill(first, second)
        again = self.check_restart(first, leader)
        self.check_sigterm(leader, again)
        self.check_converge(again)
        self.check_single_writer([first, second, again])
        self.check_stop(again)
        ok("all", "leader election end to end in %.1f s" % (time.monotonic() - t0))

    def report(self):
        for w in self.workers:
            st = "running" if w.alive() else "exit %s" % w.proc.returncode
            print("---- %s %s (pid %d, %s) stderr, last lines ----\n%s\n---- end ----"
                  % (w.label, getattr(w, "ua", ""), w.pid, st, w.stderr_tail(30)))
        if self.poller is not None:
            print("---- Lease records seen (time, holder, duration, transitions) ----")
            for s in self.poller.seen[-30:]:
                print("  %.3f %r %r %r" % s)
        if self.sim is not None and self.sim.proc is not None:
            print("---- kubesim stderr, last lines ----\n%s\n---- end ----"
                  % self.sim.stderr_tail(10))

    def cleanup(self):
        for t in (self.churn, self.poller):
            if t is not None:
                t.stop_ev.set()
        for w in self.workers:
            w.kill()
        if self.sim is not None and self.sim.proc is not None:
            rc, _ = self.sim.terminate(10 * SCALE)
            if rc is None:
                self.sim.kill()
        kill_children()
        for t in (self.churn, self.poller):
            if t is not None:
                t.join(timeout=10 * SCALE)
        if os.environ.get("E2E_KEEP"):
            with open(os.path.join(self.work, "requests.json"), "w") as f:
                json.dump([self.reqlog[s] for s in sorted(self.reqlog)], f, indent=0)
            print("# kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


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
