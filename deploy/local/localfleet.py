#!/usr/bin/python3
"""The local fleet behind deploy/local/up: kubesim, a coordinator pair and
N workers on 127.0.0.1, with sample Projects and MyResources.

    localfleet.py up      --build-dir DIR [--workers N] [--projects N]
                          [--keep] [--state-dir DIR]
    localfleet.py down    [--state-dir DIR]
    localfleet.py running [--state-dir DIR]     exit 0 when a fleet runs
    localfleet.py supervise ...                 (internal: the --keep daemon)

deploy/local/up installs the packages, builds, and then runs `up` here; the
helper can also be run alone against binaries that are already built.

Processes.  One supervisor owns the fleet.  In the foreground it is the `up`
process itself: it starts everything, shows the shard map every 2 s and
stops everything on SIGINT/SIGTERM/SIGHUP.  With --keep, `up` starts the
same supervisor as a daemon (its own session, output in the state dir's
supervisor.log), waits until the fleet is up, prints how to reach it and
exits 0; `down` sends the daemon SIGTERM.  Every child is started in its
own session (a terminal's Ctrl-C reaches only the supervisor, which stops
the children in order: workers, coordinators, kubesim) with
PR_SET_PDEATHSIG, so a supervisor killed with -9 takes its children along.
Children are exec'd directly (STYLE.md §8): nothing runs between fork and
exec but prctl.

State (--state-dir, default $XDG_RUNTIME_DIR/mcfleet-local, else
/tmp/mcfleet-local): `lock` (the supervisor holds an flock on it for its
whole life, so "is a fleet running" never depends on a PID), state.json
(the supervisor's and every child's PID with its start time and
executable, the URLs, the boot id), info.txt (how to reach the fleet),
core.kubeconfig, kubeconfigs/PROJECT.kubeconfig, fleet.key, logs/.
A PID from state.json is trusted only when the boot id is the current one
and /proc/PID shows the recorded start time and executable: after a reboot
or a kill -9 the state is stale, never a reason to signal a stranger.

Every wait is bounded.  Exit codes: 0 done, 1 failure (or a fleet already
running), 2 usage error.
"""

import argparse
import ctypes
import datetime
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

PROG = "up"
PROJ_API = "/apis/resourcemanager.miloapis.com/v1alpha1"
CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MR_API = "/apis/example.mcfleet.io/v1alpha1"
NAMESPACE = "mcfleet-system"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BINARIES = {
    "kubesim": os.path.join("tests", "kubesim", "kubesim"),
    "coordinator": os.path.join("coordinator", "mcfleet-coordinator"),
    "worker": os.path.join("worker", "mcfleet-worker"),
    "ctl": os.path.join("coordinator", "mcfleetctl"),
}
START_TIMEOUT = 30      # s: a child prints its `listening on` lines
READY_TIMEOUT = 120     # s: Projects Ready, CRDs and samples installed
LAUNCH_TIMEOUT = 240    # s: `up --keep` waits for the daemon
STOP_PATIENCE = {"worker": 25, "coordinator": 15, "kubesim": 10}
REFRESH = 2.0           # s: the status view


class Failure(Exception):
    pass


class Interrupted(Exception):
    pass


def say(msg, f=None):
    print("%s: %s" % (PROG, msg), file=f or sys.stdout, flush=True)


def default_state_dir():
    env = os.environ.get("MCFLEET_LOCAL_STATE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, "mcfleet-local")


# ---- processes we may signal ------------------------------------------------

def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_start_time(pid):
    """The process start time (clock ticks since boot, /proc/PID/stat
    field 22), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        if fields[0] == "Z":      # a zombie runs nothing
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def proc_argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def record_of(pid, exe, name, kind):
    return {"name": name, "kind": kind, "pid": pid, "exe": exe,
            "start": proc_start_time(pid)}


def record_alive(rec, boot):
    """True only when rec names a live process that is the one we started:
    same boot, same start time, same executable in argv."""
    pid = rec.get("pid")
    if not isinstance(pid, int) or pid <= 1 or boot != boot_id():
        return False
    st = proc_start_time(pid)
    if st is None or st != rec.get("start"):
        return False
    argv = proc_argv(pid)
    exe = rec.get("exe")
    return bool(argv) and exe in argv[:2]


def signal_record(rec, boot, sig):
    if not record_alive(rec, boot):
        return False
    try:
        os.kill(rec["pid"], sig)
        return True
    except ProcessLookupError:
        return False


# ---- the state directory ----------------------------------------------------

class State:
    def __init__(self, path):
        self.dir = os.path.abspath(path)
        self.lock_path = os.path.join(self.dir, "lock")
        self.json_path = os.path.join(self.dir, "state.json")
        self.info_path = os.path.join(self.dir, "info.txt")
        self.logs = os.path.join(self.dir, "logs")
        self.lock_fd = None

    def ensure(self):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        st = os.stat(self.dir)
        if st.st_uid != os.getuid():
            raise Failure("state directory %s belongs to uid %d, not to "
                          "you (uid %d); pass --state-dir"
                          % (self.dir, st.st_uid, os.getuid()))
        os.makedirs(self.logs, mode=0o700, exist_ok=True)

    def lock(self, wait_s=0.0):
        """Takes the lock (True) or finds it held (False)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.lock_fd = fd
                return True
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(0.1)

    def unlock(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def held(self):
        """True while some process holds the lock (a fleet runs)."""
        if not os.path.exists(self.lock_path):
            return False
        if self.lock_fd is not None:
            return True
        if self.lock():
            self.unlock()
            return False
        return True

    def read(self):
        try:
            with open(self.json_path) as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def write(self, doc):
        tmp = self.json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, self.json_path)

    def clear(self):
        for p in (self.json_path, self.info_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def leftovers(doc):
    """Records of processes from `doc` that are still alive."""
    boot = doc.get("boot_id", "")
    recs = list(doc.get("processes", []))
    if doc.get("supervisor"):
        recs.append(doc["supervisor"])
    return [r for r in recs if record_alive(r, boot)]


def kill_leftovers(doc, patience=5.0):
    """SIGTERM, then SIGKILL, every recorded process still alive."""
    boot = doc.get("boot_id", "")
    recs = leftovers(doc)
    for r in recs:
        signal_record(r, boot, signal.SIGTERM)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline and leftovers(doc):
        time.sleep(0.1)
    for r in leftovers(doc):
        signal_record(r, boot, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and leftovers(doc):
        time.sleep(0.1)
    return recs


# ---- HTTP -------------------------------------------------------------------

def http(method, url, body=None, ctype="application/json", timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": ctype, "User-Agent": "mcfleet-local-up"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        raw, code = e.read(), e.code
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)
    try:
        return code, json.loads(raw or b"null")
    except ValueError:
        return code, raw.decode("utf-8", "replace")


def leader_status(coord_urls):
    """The leading coordinator's /status document, or None."""
    for base in coord_urls:
        st, doc = http("GET", base + "/status", timeout=3)
        if st != 200 or not isinstance(doc, dict):
            continue
        if doc.get("role") == "leader":
            return doc
        lurl = ((doc.get("leader") or {}).get("status_url")) or ""
        if lurl:
            st, ld = http("GET", lurl, timeout=3)
            if st == 200 and isinstance(ld, dict) and \
                    ld.get("role") == "leader":
                return ld
    return None


def synced_summary(doc, projects):
    """(all owned and synced?, one line) for the expected project names."""
    if doc is None:
        return False, "no coordinator leads yet"
    ps = {p.get("name"): p for p in doc.get("projects", [])}
    ok = [n for n in projects if (ps.get(n) or {}).get("state") == "synced"
          and (ps.get(n) or {}).get("owner")]
    workers = [w for w in doc.get("workers", []) if w.get("state") ==
               "active"]
    if len(ok) == len(projects):
        return True, ("every project owned and synced: %d of %d, on %d "
                      "active workers" % (len(ok), len(projects),
                                          len(workers)))
    return False, ("%d of %d projects owned and synced, %d active workers"
                   % (len(ok), len(projects), len(workers)))


# ---- the supervisor -----------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Between fork and exec: only this system call (STYLE.md §8).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Child:
    def __init__(self, name, kind, exe, args, logs, env):
        self.name, self.kind, self.exe = name, kind, exe
        self.args = [exe] + [str(a) for a in args]
        self.out_path = os.path.join(logs, name + ".stdout")
        self.log_path = os.path.join(logs, name + ".log")
        self.env = env
        self.proc = None
        self.urls = {}
        self.reported = False

    def start(self):
        out = open(self.out_path, "wb")
        err = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=self.env, close_fds=True, start_new_session=True,
                preexec_fn=_child_setup)
        finally:
            out.close()
            err.close()
        return self

    def wait_listening(self, roles, stopping):
        """Reads `listening on URL (ROLE)` lines from the stdout file."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with open(self.out_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = ""
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "listening" and \
                        parts[1] == "on":
                    role = parts[3].strip("()") if len(parts) > 3 else ""
                    self.urls[role] = parts[2]
            if all(r in self.urls for r in roles):
                return
            if self.proc.poll() is not None:
                raise Failure("%s exited with code %s before listening; "
                              "its log %s ends:\n%s"
                              % (self.name, self.proc.returncode,
                                 self.log_path, self.log_tail()))
            if stopping():
                raise Interrupted()
            if time.monotonic() >= deadline:
                raise Failure("%s printed no `listening on` line for %s "
                              "within %d s; its log %s ends:\n%s"
                              % (self.name, ", ".join(roles) or "kubesim",
                                 START_TIMEOUT, self.log_path,
                                 self.log_tail()))
            time.sleep(0.05)

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + l for l in lines[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def record(self):
        return record_of(self.proc.pid, self.exe, self.name, self.kind)


class Supervisor:
    def __init__(self, opts, state, foreground):
        self.opts = opts
        self.state = state
        self.foreground = foreground
        self.bins = {k: os.path.join(opts.build_dir, v)
                     for k, v in BINARIES.items()}
        self.children = []
        self.stop_sig = None
        self.doc = {}
        self.sim_url = None
        self.coord_urls = []
        self.projects = ["project-%0*d" % (max(2, len(str(opts.projects))), i)
                         for i in range(1, opts.projects + 1)]
        env = dict(os.environ)
        # A POD_IP or KUBECONFIG from the user's shell must not leak into
        # the fleet: everything is on loopback with our kubeconfig.
        for k in ("POD_IP", "KUBECONFIG"):
            env.pop(k, None)
        self.env = env

    # -- signals --

    def _on_signal(self, sig, frame):
        if self.stop_sig is None:
            self.stop_sig = sig

    def stopping(self):
        return self.stop_sig is not None

    def sleep(self, s):
        deadline = time.monotonic() + s
        while not self.stopping() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0, deadline - time.monotonic())))

    # -- state --

    def save(self, status, **extra):
        self.doc.update(extra)
        self.doc["status"] = status
        self.doc["processes"] = [c.record() for c in self.children
                                 if c.proc is not None]
        self.state.write(self.doc)

    # -- bring-up --

    def spawn(self, name, kind, args, roles):
        c = Child(name, kind, self.bins[kind], args, self.state.logs,
                  self.env)
        self.children.append(c)
        c.start()
        self.save("starting")
        c.wait_listening(roles, self.stopping)
        return c

    def check_binaries(self):
        for k, p in self.bins.items():
            if not os.access(p, os.X_OK):
                raise Failure("%s is not built: %s is missing (build it, or "
                              "run ./deploy/local/up without --build-dir)"
                              % (k, p))

    def start_kubesim(self):
        kc = os.path.join(self.state.dir, "core.kubeconfig")
        c = self.spawn("kubesim", "kubesim",
                       ["--listen", "127.0.0.1:0", "--kubeconfig-out", kc,
                        "--project-ready-after", "500ms"], ("",))
        self.sim_url = c.urls[""]
        st, b = http("POST", self.sim_url + "/api/v1/namespaces",
                     {"metadata": {"name": NAMESPACE}})
        if st not in (201, 409):
            raise Failure("create namespace %s: %s %r"
                          % (NAMESPACE, st, str(b)[:300]))

    def load_yaml(self, rel):
        try:
            import yaml  # python3-yaml, a dependency of python3-kubernetes
        except ImportError:
            raise Failure("python3-yaml is missing (deploy/local/"
                          "install-deps installs it)")
        with open(os.path.join(ROOT, rel)) as f:
            return yaml.safe_load(f)

    def plane(self, project):
        return "%s%s/projects/%s/control-plane" % (self.sim_url, PROJ_API,
                                                   project)

    def create_projects(self):
        crd = self.load_yaml("deploy/crds/myresources.example.mcfleet.io.yaml")
        mr = self.load_yaml("deploy/examples/myresource.yaml")
        mr.setdefault("metadata", {})["namespace"] = "default"
        for p in self.projects:
            body = {"apiVersion": "resourcemanager.miloapis.com/v1alpha1",
                    "kind": "Project",
                    "metadata": {"name": p,
                                 "labels": {"mcfleet.io/demo": "local"}},
                    "spec": {"ownerRef": {"kind": "Organization",
                                          "name": "local"}}}
            st, b = http("POST", self.sim_url + PROJ_API + "/projects", body)
            if st not in (201, 409):
                raise Failure("create Project %s: %s %r"
                              % (p, st, str(b)[:300]))
        pending = list(self.projects)
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            for p in list(pending):
                st, doc = http("GET", self.sim_url + PROJ_API +
                               "/projects/" + p)
                conds = []
                if st == 200 and isinstance(doc, dict):
                    conds = (doc.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "Ready" and
                           c.get("status") == "True" for c in conds):
                    continue
                st, b = http("POST", self.plane(p) + CRD_API, crd)
                if st not in (201, 409):
                    raise Failure("install the MyResource CRD in %s: %s %r"
                                  % (p, st, str(b)[:300]))
                st, b = http("POST", self.plane(p) + MR_API +
                             "/namespaces/default/myresources", mr)
                if st not in (201, 409):
                    raise Failure("create MyResource %s/example: %s %r"
                                  % (p, st, str(b)[:300]))
                pending.remove(p)
            if not pending:
                break
            if self.stopping():
                raise Interrupted()
            if time.monotonic() >= deadline:
                raise Failure("Projects not Ready within %d s: %s"
                              % (READY_TIMEOUT, ", ".join(pending[:10])))
            time.sleep(0.2)

    def write_kubeconfigs(self):
        """One kubeconfig per project plane: kubesim's own, with the
        server moved under the project's path prefix."""
        import yaml
        with open(os.path.join(self.state.dir, "core.kubeconfig")) as f:
            core = yaml.safe_load(f)
        d = os.path.join(self.state.dir, "kubeconfigs")
        os.makedirs(d, mode=0o700, exist_ok=True)
        for p in self.projects:
            kc = json.loads(json.dumps(core))
            for c in kc.get("clusters") or []:
                c["name"] = p
                c["cluster"]["server"] = self.plane(p)
            for c in kc.get("contexts") or []:
                c["name"] = p
                c["context"]["cluster"] = p
            kc["current-context"] = p
            with open(os.path.join(d, p + ".kubeconfig"), "w") as f:
                f.write("# kubectl against project %s's control plane "
                        "(written by deploy/local/up)\n" % p)
                yaml.safe_dump(kc, f, default_flow_style=False,
                               sort_keys=False)

    def start_fleet(self):
        kc = os.path.join(self.state.dir, "core.kubeconfig")
        key = os.path.join(self.state.dir, "fleet.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("hex:" + os.urandom(32).hex() + "\n")
        for i in range(2):
            c = self.spawn("mcfleet-coordinator-%d" % i, "coordinator",
                           ["--kubeconfig", kc, "--listen",
                            "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                            "--key-file", key, "--name",
                            "mcfleet-coordinator-%d" % i], ("fleet", "status"))
            self.coord_urls.append(c.urls["status"])
        for i in range(self.opts.workers):
            self.spawn("mcfleet-worker-%d" % i, "worker",
                       ["--kubeconfig", kc, "--name", "mcfleet-worker-%d" % i,
                        "--http", "127.0.0.1:0", "--key-file", key],
                       ("status",))

    def info(self):
        sd = self.state.dir
        first = self.projects[0] if self.projects else None
        ctl = self.bins["ctl"]
        lines = [
            "mcfleet local fleet: kubesim, 2 coordinators, %d workers, %d "
            "projects (state and logs in %s)" % (self.opts.workers,
                                                 len(self.projects), sd),
            "",
            "kubesim (core API)     %s" % self.sim_url,
        ]
        for c in self.children:
            if c.kind == "coordinator":
                lines.append("%-22s %s   (/status /metrics /healthz "
                             "/readyz)" % (c.name, c.urls["status"]))
        for c in self.children:
            if c.kind == "worker":
                lines.append("%-22s %s   (/status /metrics /healthz "
                             "/readyz)" % (c.name, c.urls["status"]))
        lines += [
            "",
            "shard map:   %s status --coordinator %s"
            % (ctl, self.coord_urls[0]),
            "core API:    kubectl --kubeconfig %s/core.kubeconfig get "
            "projects" % sd,
        ]
        if first:
            lines.append("project %s: kubectl --kubeconfig "
                         "%s/kubeconfigs/%s.kubeconfig get "
                         "myresources,configmaps -n default"
                         % (first, sd, first))
            lines.append("  (a kubeconfig per project in %s/kubeconfigs/; "
                         "server %s/projects/NAME/control-plane)"
                         % (sd, self.sim_url + PROJ_API))
        lines.append("logs:        %s/logs/" % sd)
        return "\n".join(lines) + "\n"

    def bring_up(self):
        self.check_binaries()
        self.start_kubesim()
        self.create_projects()
        self.write_kubeconfigs()
        self.start_fleet()
        text = self.info()
        with open(self.state.info_path, "w") as f:
            f.write(text)
        self.save("running", kubesim=self.sim_url,
                  coordinators=self.coord_urls,
                  projects=self.projects)
        return text

    # -- running --

    def check_children(self):
        """Logs children that exited on their own (once each)."""
        notes = []
        for c in self.children:
            if c.proc is not None and not c.alive():
                notes.append("%s exited with code %s (log: %s)"
                             % (c.name, c.proc.returncode, c.log_path))
                if not c.reported:
                    c.reported = True
                    say("%s exited with code %s; its log %s ends:\n%s"
                        % (c.name, c.proc.returncode, c.log_path,
                           c.log_tail(5)), sys.stderr)
        return notes

    def view(self, text):
        tty = sys.stdout.isatty()
        header = text.rstrip("\n").splitlines()
        while not self.stopping():
            out = []
            for base in self.coord_urls:
                try:
                    r = subprocess.run(
                        [self.bins["ctl"], "status", "--coordinator", base,
                         "--timeout", "2s"], stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, timeout=10)
                    out = (r.stdout + r.stderr).rstrip("\n").splitlines()
                    if r.returncode == 0:
                        break
                except subprocess.TimeoutExpired:
                    out = ["mcfleetctl status: no answer within 10 s"]
            _, line = synced_summary(leader_status(self.coord_urls),
                                     self.projects)
            notes = self.check_children()
            now = datetime.datetime.now().strftime("%H:%M:%S")
            screen = header + ["", "%s  %s   (refreshed every %d s; Ctrl-C "
                                   "stops the fleet)" % (now, line,
                                                        int(REFRESH)), ""]
            screen += out + [""] + notes
            if tty:
                sys.stdout.write("\033[H\033[2J")
            else:
                sys.stdout.write("----\n")
            sys.stdout.write("\n".join(screen) + "\n")
            sys.stdout.flush()
            self.sleep(REFRESH)

    def idle(self):
        while not self.stopping():
            self.check_children()
            self.sleep(0.5)

    # -- shutdown --

    def stop_all(self):
        for kind in ("worker", "coordinator", "kubesim"):
            group = [c for c in self.children if c.kind == kind and c.alive()]
            for c in group:
                c.proc.send_signal(signal.SIGTERM)
            if kind == "worker" and group:
                # A worker drains on SIGTERM (its projects move to the
                # others); with every worker leaving there is nowhere to
                # go, and a second signal ends the wait.
                t = time.monotonic() + 1.0
                while time.monotonic() < t and any(c.alive() for c in group):
                    time.sleep(0.05)
                for c in group:
                    if c.alive():
                        c.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_PATIENCE[kind]
            while time.monotonic() < deadline and \
                    any(c.alive() for c in group):
                time.sleep(0.05)
            for c in group:
                if c.alive():
                    say("%s did not stop within %d s; killing it"
                        % (c.name, STOP_PATIENCE[kind]), sys.stderr)
                    c.proc.kill()
                    c.reported = True
                    try:
                        c.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
        for c in self.children:
            rc = c.proc.poll() if c.proc is not None else 0
            if rc not in (0, None) and not c.reported:
                c.reported = True
                say("%s exited with code %s on stop; its log %s ends:\n%s"
                    % (c.name, rc, c.log_path, c.log_tail(5)), sys.stderr)

    def run(self, on_ready=None):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        self.state.ensure()
        if not self.state.lock(wait_s=3.0):
            say(already_running_msg(self.state), sys.stderr)
            return 1
        rc = 0
        try:
            old = self.state.read()
            stale = kill_leftovers(old)
            if stale:
                say("stopped %d processes left over from an earlier run: %s"
                    % (len(stale), ", ".join("%s (PID %d)"
                                             % (r["name"], r["pid"])
                                             for r in stale)), sys.stderr)
            self.state.clear()
            self.doc = {"boot_id": boot_id(),
                        "supervisor": record_of(os.getpid(),
                                                sys.executable,
                                                "supervisor", "supervisor"),
                        "state_dir": self.state.dir,
                        "foreground": self.foreground,
                        "workers": self.opts.workers}
            # The supervisor's own exe check: argv[0] is the interpreter
            # (or its path), argv[1] this script.
            self.doc["supervisor"]["exe"] = os.path.abspath(__file__)
            self.save("starting")
            text = self.bring_up()
            if on_ready:
                on_ready(text)
            if self.foreground:
                self.view(text)
            else:
                self.idle()
        except Interrupted:
            pass
        except Failure as e:
            say("error: %s" % e, sys.stderr)
            self.doc["error"] = str(e)
            rc = 1
        except Exception as e:   # stop the children whatever went wrong
            say("error: %r" % e, sys.stderr)
            self.doc["error"] = repr(e)
            rc = 1
        finally:
            if rc != 0:
                self.save("failed")
            else:
                self.save("stopping")
            if self.foreground:
                say("stopping the fleet")
            self.stop_all()
            left = [c.name for c in self.children if c.alive()]
            if rc != 0:
                self.save("failed")
            else:
                self.state.clear()
            self.state.unlock()
            if left:
                say("still running: %s" % ", ".join(left), sys.stderr)
                rc = 1
            elif self.foreground:
                say("stopped; nothing left running (logs in %s)"
                    % self.state.logs)
        return rc


def already_running_msg(state):
    doc = state.read()
    sup = doc.get("supervisor") or {}
    how = "./deploy/local/up --down"
    if state.dir != os.path.abspath(default_state_dir()):
        how += " --state-dir %s" % state.dir
    parts = ["a local fleet is already running"]
    if sup.get("pid"):
        parts.append(" (supervisor PID %d" % sup["pid"])
        if doc.get("kubesim"):
            parts.append(", kubesim %s" % doc["kubesim"])
        parts.append(")")
    parts.append(" in %s; stop it with %s" % (state.dir, how))
    return "".join(parts)


# ---- commands -----------------------------------------------------------------

def cmd_up(opts):
    state = State(opts.state_dir)
    state.ensure()
    if state.held():
        say(already_running_msg(state), sys.stderr)
        return 1
    if not opts.keep:
        return Supervisor(opts, state, foreground=True).run()

    # --keep: the supervisor runs as a daemon in its own session.
    log = os.path.join(state.logs, "supervisor.log")
    args = [sys.executable, os.path.abspath(__file__), "supervise",
            "--build-dir", opts.build_dir, "--state-dir", state.dir,
            "--workers", str(opts.workers), "--projects", str(opts.projects)]
    with open(log, "ab") as lf:
        lf.write(("---- %s supervisor starting\n"
                  % datetime.datetime.now().isoformat()).encode())
        lf.flush()
        d = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=lf,
                             stderr=lf, close_fds=True,
                             start_new_session=True, cwd="/")
    try:
        return launched(opts, state, d, log)
    except KeyboardInterrupt:
        # Ctrl-C before the fleet was up: take the daemon down too.
        say("interrupted; stopping the fleet", sys.stderr)
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(timeout=sum(STOP_PATIENCE.values()) + 20)
        except subprocess.TimeoutExpired:
            d.kill()
        return 1


def launched(opts, state, d, log):
    """`up --keep` after starting the daemon `d`: waits until it reports
    the fleet running (or fails), then prints how to reach it."""
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while True:
        doc = state.read()
        sup = doc.get("supervisor") or {}
        if sup.get("pid") == d.pid and doc.get("status") == "running":
            break
        if d.poll() is not None:
            tail = ""
            try:
                with open(log, "rb") as f:
                    tail = "\n".join(f.read().decode("utf-8", "replace")
                                     .splitlines()[-20:])
            except OSError:
                pass
            say("the fleet did not start (exit %s); %s ends:\n%s"
                % (d.returncode, log, tail), sys.stderr)
            return 1
        if time.monotonic() >= deadline:
            say("the fleet did not come up within %d s; stopping it (see "
                "%s)" % (LAUNCH_TIMEOUT, log), sys.stderr)
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(timeout=60)
            except subprocess.TimeoutExpired:
                d.kill()
            return 1
        time.sleep(0.2)
    with open(state.info_path) as f:
        sys.stdout.write(f.read())
    how = "./deploy/local/up --down"
    if state.dir != os.path.abspath(default_state_dir()):
        how += " --state-dir %s" % state.dir
    print("\nThe fleet runs in the background (supervisor PID %d). Stop it "
          "with: %s" % (d.pid, how), flush=True)
    return 0


def cmd_supervise(opts):
    return Supervisor(opts, State(opts.state_dir), foreground=False).run()


def cmd_running(opts):
    state = State(opts.state_dir)
    if state.held():
        print(already_running_msg(state))
        return 0
    return 1


def cmd_down(opts):
    state = State(opts.state_dir)
    if not os.path.isdir(state.dir):
        say("no local fleet is running (no state in %s)" % state.dir)
        return 0
    doc = state.read()
    running = state.held()
    left = leftovers(doc)
    if not running and not left:
        state.clear()
        say("no local fleet is running (%s)" % state.dir)
        return 0
    boot = doc.get("boot_id", "")
    sup = doc.get("supervisor") or {}
    deadline = time.monotonic() + 5
    while running and not record_alive(sup, boot) and \
            time.monotonic() < deadline:
        # A supervisor that just took the lock writes its record next.
        time.sleep(0.2)
        doc = state.read()
        boot = doc.get("boot_id", "")
        sup = doc.get("supervisor") or {}
    if running and record_alive(sup, boot):
        say("stopping the fleet (supervisor PID %d)" % sup["pid"])
        signal_record(sup, boot, signal.SIGTERM)
        deadline = time.monotonic() + sum(STOP_PATIENCE.values()) + 20
        while time.monotonic() < deadline and state.held():
            time.sleep(0.2)
        # The lock goes just before the supervisor exits: let it finish.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and record_alive(sup, boot):
            time.sleep(0.1)
    elif running:
        say("the lock in %s is held but its supervisor is not the recorded "
            "one; stopping the recorded processes" % state.dir, sys.stderr)
    doc = state.read() or doc
    left = kill_leftovers(doc)
    if left:
        say("stopped leftover processes: %s" % ", ".join(
            "%s (PID %d)" % (r["name"], r["pid"]) for r in left))
    still = leftovers(doc)
    if still:
        say("still running: %s" % ", ".join(
            "%s (PID %d)" % (r["name"], r["pid"]) for r in still),
            sys.stderr)
        return 1
    if state.held():
        say("the lock %s is still held by another process" % state.lock_path,
            sys.stderr)
        return 1
    state.clear()
    say("stopped; nothing left running")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="localfleet.py")
    ap.add_argument("command", choices=("up", "down", "running",
                                        "supervise"))
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-local"))
    ap.add_argument("--state-dir", default=default_state_dir())
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--projects", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    opts = ap.parse_args(argv)
    if not 1 <= opts.workers <= 64:
        ap.error("--workers must be 1..64")
    if not 0 <= opts.projects <= 2000:
        ap.error("--projects must be 0..2000")
    opts.build_dir = os.path.abspath(opts.build_dir)
    opts.state_dir = os.path.abspath(opts.state_dir)
    try:
        return {"up": cmd_up, "down": cmd_down, "running": cmd_running,
                "supervise": cmd_supervise}[opts.command](opts)
    except Failure as e:
        say("error: %s" % e, sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
