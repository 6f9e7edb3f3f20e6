#!/usr/bin/python3
"""deploy/local/up against binaries that are already built.

    deploy_local_test.py SOURCE_DIR BUILD_DIR

1. `up --keep --projects 6 --workers 2 --build-dir BUILD_DIR` exits 0 and
   prints the kubesim URL, the coordinators' status URLs and the
   kubeconfigs; `mcfleetctl status --output json` then shows every project
   owned and synced (bounded wait);
2. a second `up` (with and without --keep) exits 1 saying a fleet runs;
3. kubectl, with a fresh --cache-dir, reads the core API (the Projects) and
   a project's control plane (the sample MyResource and its ConfigMap)
   through the kubeconfigs printed;
4. `up --down` stops everything (no recorded PID left alive); a second
   `--down` says nothing runs and exits 0;
5. stale state: a kept fleet whose supervisor is killed with -9 takes its
   children along (PR_SET_PDEATHSIG), and `--down` then reports nothing
   running and exits 0;
6. the foreground mode: `up` (no --keep) shows the shard map, reaches
   "every project owned and synced", and on SIGINT exits 0 leaving nothing
   running.

Each run uses a state directory of its own (--state-dir), so a fleet the
user keeps in the default one is never touched.  Every wait is bounded and
scaled by MCF_TEST_TIMEOUT_SCALE; whatever the outcome, the processes this
test caused are stopped by their PIDs (checked against /proc) at the end.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC, BUILD = sys.argv[1], sys.argv[2]
UP = os.path.join(SRC, "deploy", "local", "up")
CTL = os.path.join(BUILD, "coordinator", "mcfleetctl")
SCALE = max(1, int(os.environ.get("MCF_TEST_TIMEOUT_SCALE", "1") or "1"))
WORK = tempfile.mkdtemp(prefix="deploy_local.")
STATE = os.path.join(WORK, "state")
SEEN = []   # every process record seen in a state.json, for the cleanup

sys.dont_write_bytecode = True  # no __pycache__ in deploy/local
sys.path.insert(0, os.path.join(SRC, "deploy", "local"))
import localfleet  # noqa: E402  (the helper's PID checks)


class Failure(Exception):
    pass


def ok(msg):
    print("ok %s" % msg, flush=True)


def expect(cond, what, seen=""):
    if not cond:
        raise Failure("%s\n  seen: %s" % (what, seen))


def up(*args, timeout=None):
    r = subprocess.run([UP, "--build-dir", BUILD, "--state-dir", STATE] +
                       list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True,
                       timeout=timeout or 300 * SCALE)
    return r.returncode, r.stdout, r.stderr


def state_doc():
    try:
        with open(os.path.join(STATE, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def records(doc):
    recs = list(doc.get("processes", []))
    if doc.get("supervisor"):
        recs.append(doc["supervisor"])
    for r in recs:
        SEEN.append((doc.get("boot_id", ""), r))
    return recs


def alive(recs, boot):
    return [r for r in recs if localfleet.record_alive(r, boot)]


def wait_until(what, fn, timeout, interval=0.5):
    deadline = time.monotonic() + timeout * SCALE
    detail = None
    while True:
        done, detail = fn()
        if done:
            return
        if time.monotonic() >= deadline:
            raise Failure("%s: not within %d s\n  seen: %s"
                          % (what, timeout * SCALE, detail))
        time.sleep(interval)


def all_synced(coord, n):
    def f():
        r = subprocess.run([CTL, "status", "--coordinator", coord,
                            "--output", "json"], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            return False, r.stderr.strip()
        doc = json.loads(r.stdout)
        ps = doc.get("projects", [])
        good = [p for p in ps if p.get("state") == "synced" and
                p.get("owner")]
        return (len(ps) == n and len(good) == n,
                [(p.get("name"), p.get("owner"), p.get("state"))
                 for p in ps])
    return f


def kubectl(kubeconfig, *args):
    cache = tempfile.mkdtemp(prefix="kubectl-cache.", dir=WORK)
    r = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir",
                        cache, "--request-timeout", "20s"] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60 * SCALE)
    return r.returncode, r.stdout, r.stderr


def check_down_stops(recs, boot):
    rc, out, err = up("--down")
    expect(rc == 0, "up --down exits 0", (rc, out, err))
    wait_until("every process of the fleet gone",
               lambda: (not alive(recs, boot),
                        [r["name"] for r in alive(recs, boot)]), 10)
    return out


def test_keep():
    rc, out, err = up("--keep", "--projects", "6", "--workers", "2")
    expect(rc == 0, "up --keep exits 0", (rc, out, err))
    m = re.search(r"kubesim \(core API\)\s+(http://127\.0\.0\.1:\d+)", out)
    expect(m is not None, "up --keep prints the kubesim URL", out)
    coords = re.findall(r"mcfleet-coordinator-\d\s+(http://127\.0\.0\.1:\d+)",
                        out)
    expect(len(coords) == 2, "up --keep prints both coordinators' status "
           "URLs", out)
    core_kc = re.search(r"--kubeconfig (\S+core\.kubeconfig)", out)
    proj_kc = re.search(r"--kubeconfig (\S+/kubeconfigs/(\S+)\.kubeconfig)",
                        out)
    expect(core_kc and proj_kc, "up --keep prints both kubeconfigs", out)
    expect("--down" in out, "up --keep says how to stop the fleet", out)
    ok("up --keep: exit 0, kubesim %s, coordinators %s"
       % (m.group(1), " ".join(coords)))

    doc = state_doc()
    boot = doc.get("boot_id", "")
    recs = records(doc)
    kinds = sorted(r["kind"] for r in recs)
    expect(kinds == ["coordinator", "coordinator", "kubesim", "supervisor",
                     "worker", "worker"], "state.json records every process",
           kinds)
    expect(len(alive(recs, boot)) == len(recs), "every recorded process "
           "alive", [r["name"] for r in recs if r not in alive(recs, boot)])

    wait_until("mcfleetctl status: 6 projects owned and synced",
               all_synced(coords[1], 6), 90)
    ok("mcfleetctl status --output json: 6 of 6 projects owned and synced")

    for extra in (["--keep"], []):
        rc, out2, err2 = up(*(extra + ["--projects", "6", "--workers", "2"]),
                            timeout=60 * SCALE)
        expect(rc == 1, "a second up %s exits 1" % " ".join(extra),
               (rc, out2, err2))
        expect("already running" in err2 and "--down" in err2,
               "a second up says a fleet runs and how to stop it", err2)
    ok("a second up (with and without --keep): exit 1, %r" % err2.strip())

    rc, o, e = kubectl(core_kc.group(1), "get", "projects", "-o", "name")
    expect(rc == 0 and len(o.split()) == 6, "kubectl get projects through "
           "the core kubeconfig lists 6", (rc, o, e))
    rc, o, e = kubectl(core_kc.group(1), "get", "leases", "-n",
                       "mcfleet-system", "-o", "name")
    expect(rc == 0 and "lease.coordination.k8s.io/mcfleet-coordinator" in o,
           "kubectl sees the coordinator Lease", (rc, o, e))
    ok("kubectl, core API: 6 projects and the coordinator Lease")

    def mr_ready():
        rc, o, e = kubectl(proj_kc.group(1), "get", "myresources", "-n",
                           "default", "-o", "json")
        if rc != 0:
            return False, e
        items = json.loads(o).get("items", [])
        conds = [c for i in items for c in
                 (i.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready" and c.get("status") == "True"]
        return len(items) == 1 and len(conds) == 1, o[:300]
    wait_until("the sample MyResource Ready in %s" % proj_kc.group(2),
               mr_ready, 60)
    rc, o, e = kubectl(proj_kc.group(1), "get", "configmap",
                       "example-config", "-n", "default",
                       "-o", "jsonpath={.data.greeting}")
    expect(rc == 0 and o == "hello", "kubectl reads the ConfigMap the "
           "worker made in the project plane", (rc, o, e))
    ok("kubectl, project %s: MyResource Ready, ConfigMap example-config"
       % proj_kc.group(2))

    out = check_down_stops(recs, boot)
    ok("up --down: exit 0, none of %d PIDs alive (%s)"
       % (len(recs), out.strip().splitlines()[-1]))
    rc, out, err = up("--down")
    expect(rc == 0 and "no local fleet is running" in out,
           "a second --down says nothing runs and exits 0", (rc, out, err))
    ok("a second up --down: exit 0, %r" % out.strip())


def test_stale_state():
    rc, out, err = up("--keep", "--projects", "1", "--workers", "1")
    expect(rc == 0, "up --keep exits 0", (rc, out, err))
    doc = state_doc()
    boot = doc.get("boot_id", "")
    recs = records(doc)
    os.kill(doc["supervisor"]["pid"], signal.SIGKILL)
    wait_until("the children die with their supervisor",
               lambda: (not alive(recs, boot),
                        [r["name"] for r in alive(recs, boot)]), 10)
    rc, out, err = up("--down")
    expect(rc == 0 and "no local fleet is running" in out,
           "--down after a kill -9 says nothing runs", (rc, out, err))
    ok("kill -9 of the supervisor: its children died with it; --down: %r"
       % out.strip())


def test_foreground():
    outpath = os.path.join(WORK, "foreground.out")
    with open(outpath, "wb") as f:
        p = subprocess.Popen([UP, "--build-dir", BUILD, "--state-dir", STATE,
                              "--projects", "4", "--workers", "2"],
                             stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT)
    try:
        def shown():
            with open(outpath, errors="replace") as f:
                text = f.read()
            if p.poll() is not None:
                raise Failure("up exited %s early:\n%s"
                              % (p.returncode, text[-2000:]))
            return ("every project owned and synced: 4 of 4" in text and
                    "PROJECTS (4: 4 synced" in text, text[-600:])
        wait_until("the status view shows every project synced", shown, 90)
        doc = state_doc()
        boot = doc.get("boot_id", "")
        recs = records(doc)
        expect(doc.get("supervisor", {}).get("pid") == p.pid,
               "the foreground up is the supervisor", doc.get("supervisor"))
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(timeout=60 * SCALE)
        except subprocess.TimeoutExpired:
            raise Failure("up did not exit within %d s of SIGINT"
                          % (60 * SCALE))
        took = time.monotonic() - t0
        with open(outpath, errors="replace") as f:
            text = f.read()
        tail = text[text.rfind("stopping the fleet"):][-2000:]
        expect(rc == 0, "up exits 0 after SIGINT", (rc, tail))
        left = alive(recs, boot)
        expect(not left, "nothing left running after SIGINT",
               [r["name"] for r in left])
        expect("nothing left running" in tail, "up says it stopped all",
               tail)
        expect("exited with code" not in tail, "every process exits 0 on "
               "stop", tail)
        ok("foreground: shard map shown, SIGINT stopped all %d processes in "
           "%.1f s, exit 0" % (len(recs) - 1, took))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def cleanup():
    """Stops anything this test started that is still alive."""
    try:
        subprocess.run([UP, "--down", "--state-dir", STATE], timeout=90,
                       capture_output=True)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for boot, r in SEEN:
        localfleet.signal_record(r, boot, signal.SIGKILL)


def main():
    shutil.which("kubectl") or print("kubectl not on PATH: the kubectl "
                                      "checks will fail", flush=True)
    rc = 0
    try:
        test_keep()
        test_stale_state()
        test_foreground()
    except (Failure, subprocess.TimeoutExpired) as e:
        print("FAIL %s" % e, flush=True)
        for name in sorted(os.listdir(os.path.join(STATE, "logs"))
                           if os.path.isdir(os.path.join(STATE, "logs"))
                           else []):
            if name.endswith(".log"):
                with open(os.path.join(STATE, "logs", name), "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
                print("--- %s (last 10 lines)\n%s"
                      % (name, "\n".join(lines[-10:])))
        rc = 1
    finally:
        cleanup()
        if rc == 0 and not os.environ.get("DEPLOY_LOCAL_KEEP"):
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("# work dir kept: %s" % WORK)
    return rc


if __name__ == "__main__":
    sys.exit(main())
