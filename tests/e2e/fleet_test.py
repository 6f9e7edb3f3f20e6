#!/usr/bin/python3
"""The sharded fleet end to end: kubesim, a coordinator pair, workers.

Usage: /usr/bin/python3 tests/e2e/fleet_test.py KUBESIM COORDINATOR WORKER
           MCFLEETCTL REPO_ROOT [external|internal]

Phases (each bounded in time; the single-writer checker of fleetlib runs at
the end over the whole run and fails if it saw no writes):

  start     two coordinators, three workers; exactly one coordinator leads;
            12 Projects become Ready and are each owned by one worker and
            synced; a MyResource in every project converges (the workers
            reconcile inside the project planes); `mcfleetctl status` prints
            every worker and project.
  scale-up  a fourth worker joins: projects move to it, close to the
            minimum (≤ 2 × 12/4 moves; the load bound may move one or two
            between old workers), loads within the bound, every project
            synced again.
  readiness a project whose Ready turns False is disengaged after the grace;
            True again re-engages it; a deleted project is disengaged.
  plane     a project whose control plane answers 503 is `failing` with a
            reason while every other project stays synced; it is synced
            once the fault is removed.
  kill-9    kill -9 a worker: its projects are synced elsewhere within a
            bound (its Lease must expire: 3 s, asserted with margin), and
            their MyResources converge after a change.
  sigterm   SIGTERM a worker: it hands its projects off (disengage, then
            engage elsewhere) and exits 0.
  failover  kill -9 the leading coordinator: the other leads; while no
            coordinator leads, workers keep reconciling (a MyResource change
            converges); no project moves (owners unchanged).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SCALE, Failure, Fleet, expect, ok, wait_until, http_json,  # noqa
                      SANITIZER_MARKS)
import subprocess  # noqa: E402


def main():
    if len(sys.argv) < 6:
        print(__doc__)
        return 2
    mode = sys.argv[6] if len(sys.argv) > 6 else "external"
    bins = {"kubesim": sys.argv[1], "coordinator": sys.argv[2],
            "worker": sys.argv[3], "ctl": sys.argv[4], "root": sys.argv[5]}
    f = Fleet(bins, "e2e_fleet_%s" % mode, mode)
    try:
        run(f, bins, mode)
    except Failure as e:
        print("FAIL %s\n%s" % (e, f.diagnostics()), flush=True)
        return 1
    return 0


def run(f, bins, mode):
    killed = {}
    f.start_kubesim()
    f.start_coordinator("coord-a")
    f.start_coordinator("coord-b")
    for i in range(3):
        f.start_worker("mcfleet-worker-%d" % i)
    leader = f.wait_leader(30 * SCALE)
    roles = {n: (f.coord_status(n) or {}).get("role") for n in f.coords}
    expect(sorted(roles.values()) == ["leader", "standby"],
           "one leader, one standby", "leader+standby", roles)
    standby = [n for n in f.coords if n != leader][0]
    sdoc = f.coord_status(standby)
    expect(sdoc.get("leader", {}).get("identity") == leader and
           not sdoc.get("projects"),
           "the standby names the leader and lists no projects",
           leader, sdoc.get("leader"))
    ok("start", "%s leads, %s stands by" % (leader, standby))

    projects = ["p%02d" % i for i in range(12)]
    for p in projects:
        f.create_project(p)
    t, ps = f.wait_all_synced(projects, 60 * SCALE)
    ok("engage", "12 projects owned and synced in %.1f s" % t)
    for p in projects:
        f.install_crd(p)
        f.create_mr(p, "mr", {"v": "1"})
    for p in projects:
        wait_until("MyResource in %s converges" % p,
                   lambda p=p: f.mr_converged(p, "mr", {"v": "1"}),
                   60 * SCALE)
    ok("reconcile", "a MyResource converged in every project")

    r = subprocess.run([bins["ctl"], "status", "--coordinator",
                        f.coords[standby].urls["status"]],
                       capture_output=True, text=True, timeout=30 * SCALE)
    expect(r.returncode == 0, "mcfleetctl status (via the standby)", "exit 0",
           "%d %s" % (r.returncode, r.stderr))
    for w in f.workers:
        expect(w in r.stdout, "mcfleetctl status lists worker %s" % w,
               w, r.stdout)
    for p in projects:
        expect(p in r.stdout, "mcfleetctl status lists project %s" % p, p,
               r.stdout[:2000])
    ok("mcfleetctl", "status table lists 3 workers and 12 projects")

    # -- scale up --
    before = f.owners()
    f.start_worker("mcfleet-worker-3")
    def moved_to_new():
        o = f.owners()
        return any(v == "mcfleet-worker-3" for v in o.values()), o
    wait_until("the new worker gets projects", moved_to_new, 60 * SCALE)
    t, ps = f.wait_all_synced(projects, 60 * SCALE)
    after = f.owners()
    moved = [p for p in projects if before[p] != after[p]]
    # The load bound (ceil(1.1 * 12/4) = 4) may move a project or two
    # between old workers as well; the rest go to the new one.
    expect(sum(after[p] == "mcfleet-worker-3" for p in moved) >= 2,
           "on scale-up projects move to the new worker", ">= 2 to -3",
           {p: (before[p], after[p]) for p in moved})
    expect(len(moved) <= 6, "movement close to the minimum (3 of 12)",
           "<= 6 moves", len(moved))
    loads = {}
    for p in projects:
        loads[after[p]] = loads.get(after[p], 0) + 1
    expect(max(loads.values()) <= 4, "loads within ceil(1.1 * 12/4) = 4",
           "<= 4", loads)
    ok("scale-up", "%d projects moved to the new worker; loads %s"
       % (len(moved), sorted(loads.values())))

    # -- readiness changes --
    p = projects[0]
    f.set_project_ready(p, "False")
    def gone_from_owner():
        ps = f.projects_state() or {}
        e = ps.get(p)
        return e is None or not e.get("owner") or \
            e.get("state") == "pending", e
    wait_until("%s disengaged after Ready=False and the grace" % p,
               gone_from_owner, 30 * SCALE)
    f.set_project_ready(p, "True")
    f.wait_all_synced(projects, 60 * SCALE)
    f.create_project("pdel")
    f.wait_all_synced(projects + ["pdel"], 60 * SCALE)
    f.delete_project("pdel")
    def pdel_gone():
        ps = f.projects_state() or {}
        return "pdel" not in ps or not ps["pdel"].get("owner"), ps.get("pdel")
    wait_until("a deleted project is disengaged", pdel_gone, 30 * SCALE)
    ok("readiness", "Ready=False disengages after the grace, True "
       "re-engages, deletion disengages")

    # -- an unavailable project control plane --
    st, rule = http_json("POST", f.url + "/_sim/faults",
                         {"match": {"plane": "pbad"},
                          "action": {"plane": "unavailable"}})
    expect(st == 201, "add the plane fault", 201, "%s %r" % (st, rule))
    f.create_project("pbad")
    def bad_failing():
        ps = f.projects_state() or {}
        e = ps.get("pbad") or {}
        others = [n for n in projects
                  if (ps.get(n) or {}).get("state") != "synced"]
        return (e.get("state") == "failing" and e.get("reason") and
                not others), (e, others)
    wait_until("pbad failing with a reason, every other project synced",
               bad_failing, 60 * SCALE)
    reason = f.projects_state()["pbad"]["reason"]
    st, _ = http_json("DELETE", f.url + "/_sim/faults/%d" % rule["id"])
    expect(st in (200, 204), "remove the plane fault", "200/204", st)
    f.wait_all_synced(projects + ["pbad"], 60 * SCALE)
    f.delete_project("pbad")
    wait_until("pbad disengaged", lambda: (
        "pbad" not in (f.projects_state() or {}) or
        not (f.projects_state() or {}).get("pbad", {}).get("owner"), ""),
        30 * SCALE)
    ok("plane-fault", "an unavailable plane is failing (%s) while the rest "
       "stay synced, and recovers" % reason[:80])

    # -- kill -9 a worker --
    victim = "mcfleet-worker-1"
    vstat = f.worker_status(victim) or {}
    owned = [p for p, o in f.owners().items() if o == victim]
    t0 = time.monotonic()
    killed[(victim, vstat.get("incarnation"))] = time.time()
    f.workers[victim].kill9()
    f.retire(victim)
    survivors = list(f.workers)
    t, ps = f.wait_all_synced(projects, 30 * SCALE, owners_among=survivors)
    took = time.monotonic() - t0
    # Bound: the worker Lease (3 s) + the engage; asserted with margin.
    expect(took <= 15 * SCALE, "failover of a killed worker's projects",
           "<= 15 s", "%.1f s" % took)
    for i, p in enumerate(owned):
        f.patch_mr(p, "mr", {"v": "k%d" % i})
    for i, p in enumerate(owned):
        wait_until("MyResource in %s converges on its new owner" % p,
                   lambda p=p, i=i: f.mr_converged(p, "mr",
                                                   {"v": "k%d" % i}),
                   60 * SCALE)
    ok("kill-9", "%d projects of the killed worker synced elsewhere in "
       "%.1f s and reconcile there" % (len(owned), took))

    # -- SIGTERM a worker: hand-off --
    leaving = "mcfleet-worker-2"
    owned = [p for p, o in f.owners().items() if o == leaving]
    code, secs = f.workers[leaving].terminate(30 * SCALE)
    expect(code == 0, "SIGTERM'd worker exits 0 after its hand-off", 0,
           "%s after %.1f s" % (code, secs))
    err = f.workers[leaving].stderr_text()
    expect(not any(m in err for m in SANITIZER_MARKS),
           "no sanitizer report from the leaving worker", "none",
           f.workers[leaving].stderr_tail())
    f.retire(leaving)
    t, ps = f.wait_all_synced(projects, 30 * SCALE,
                              owners_among=list(f.workers))
    ok("sigterm", "%d projects handed off; exit 0 after %.1f s"
       % (len(owned), secs))

    # -- kill -9 the leading coordinator --
    before = f.owners()
    leader = f.leader()
    f.coords[leader].kill9()
    p = projects[1]
    f.patch_mr(p, "mr", {"v": "during-failover"})
    wait_until("reconciling continues without a leader",
               lambda: f.mr_converged(p, "mr", {"v": "during-failover"}),
               30 * SCALE)
    new = f.wait_leader(30 * SCALE)
    expect(new != leader, "the standby leads", "not %s" % leader, new)
    t, ps = f.wait_all_synced(projects, 30 * SCALE)
    after = f.owners()
    moved = [p for p in projects if before.get(p) != after.get(p)]
    expect(not moved, "no project moves on a coordinator failover",
           "none", {p: (before.get(p), after.get(p)) for p in moved})
    ok("failover", "%s leads; no project moved" % new)

    n = f.check_single_writer(killed)
    expect(n > 0, "the single-writer checker saw writes", "> 0", n)
    ok("single-writer", "%d project-plane writes, each inside its writer's "
       "interval; no overlapping intervals" % n)

    for name, p in list(f.workers.items()):
        code, secs = p.terminate(30 * SCALE)
        expect(code == 0, "worker %s exits 0 on SIGTERM" % name, 0, code)
    for name, p in f.coords.items():
        if p.alive():
            code, secs = p.terminate(15 * SCALE)
            expect(code == 0, "coordinator %s exits 0 on SIGTERM" % name, 0,
                   code)
    ok("stop", "every process exited 0")


if __name__ == "__main__":
    sys.exit(main())
