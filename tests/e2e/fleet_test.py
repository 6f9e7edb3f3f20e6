#!/usr/bin/python3
"""The sharded fleet end to end: kubesim, a coordinator pair, workers.

Usage: /usr/bin/python3 tests/e2e/fleet_test.py KUBESIM COORDINATOR WORKER
           MCFLEETCTL REPO_ROOT [external|internal]

Phases (each bounded in time; the single-writer checker of fleetlib runs at
the end over the whole run and fails if it saw no writes):

  start     two coordinators; exactly one leads; 12 Projects become Ready
            before any worker runs; three workers start at once (a cold
            start) and every project is owned by one worker and synced
            without any moving (the leader lets the worker set settle
            before engaging: no hand-off, no disengage); a MyResource in every project converges (the workers
            reconcile inside the project planes); `mcfleetctl status` prints
            every worker and project.
  scale-up  3 -> 4: a fourth worker joins: projects move to it, close to
            the minimum (<= 2 x 12/4 moves; the load bound may move one or
            two between old workers), loads within ceil(1.1 x 12/4) = 4,
            every project synced again.
  readiness a project whose Ready turns False is disengaged after the grace;
            True again re-engages it; a deleted project is disengaged.
  plane     a project whose control plane answers 503 is `failing` with a
            reason while every other project stays synced; it is synced
            once the fault is removed.
  kill-9    4 -> 3, unplanned: kill -9 a worker: its projects are synced
            elsewhere within a bound (its Lease must expire: 3 s, asserted
            with margin), and their MyResources converge after a change.
            Movement: every project of the killed worker moved, at most 2
            others (the load bound); loads within ceil(1.1 x 12/3) = 5;
            every project owned by a survivor and synced.
  sigterm   3 -> 2, planned: SIGTERM a worker: it hands its projects off
            (disengage, then engage elsewhere) and exits 0.  The same
            movement checks: only its projects move, plus at most 2 for
            the load bound; loads within ceil(1.1 x 12/2) = 7; every
            project owned and synced.  With scale-up and kill-9 this is
            the 3 -> 4 -> 2 scale of issue 5, down in one unplanned and
            one planned step (a StatefulSet scale-down is the planned one).
  failover  kill -9 the leading coordinator: the other leads; while no
            coordinator leads, workers keep reconciling (a MyResource change
            converges); no project moves (owners unchanged) and every
            worker's engage and disengage counters are unchanged.
  rogue     frames to the new leader's fleet port from connections that
            never said HELLO (tests/e2e/rogue.py: a hand-written msgpack
            encoder, checked first against the 1.0 HELLO vector of
            tests/proto_test.c, and NNG's pair1-over-TCP by hand):
              truncated msgpack (right key, payload cut) -> malformed
              a replay of an accepted heartbeat, new connection -> replay
              signed with a wrong key -> bad_auth
              right key, the leader's Lease uid with transitions - 1
                (hence after the failover: terms start at 0) -> lower_term
              4 MiB + 1 byte, otherwise valid -> too_big
            Each raises mcfleet_proto_frames_rejected_total{reason} on the
            leader's /metrics by exactly one and no other reason; each is
            logged (PROTO-REJECT).  A 64 MiB message announced on a pipe
            is cut off by NNG (the pipe closes at once: NNG_OPT_RECVMAXSZ
            bounds what a peer can make the leader allocate) and counted
            nowhere.  Then: the leader stays healthy, no owner
            changes, every project stays synced, every worker stays active,
            and no worker's engage/disengage counter moves.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SCALE, Failure, Fleet, expect, ok, wait_until, http_json,  # noqa
                      http, SANITIZER_MARKS)
import rogue  # noqa: E402
import math  # noqa: E402
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


def load_bound(nprojects, nworkers, epsilon=0.1):
    """ceil((1 + epsilon) * N / workers), the sharder's bound for equal
    weights (the 1e-9 absorbs float error such as 1.1 * 10 =
    11.000000000000002, whose ceiling is 11, not 12)."""
    return math.ceil((1 + epsilon) * nprojects / nworkers - 1e-9)


def check_movement(what, projects, before, after, workers):
    """Every project owned by one of `workers`, loads within the bound.
    Returns (moved projects, {worker: load})."""
    unowned = [p for p in projects if after.get(p) not in workers]
    expect(not unowned, "%s: every project owned by a live worker" % what,
           "owners among %s" % sorted(workers),
           {p: after.get(p) for p in unowned})
    loads = {w: 0 for w in workers}
    for p in projects:
        loads[after[p]] += 1
    bound = load_bound(len(projects), len(workers))
    expect(max(loads.values()) <= bound,
           "%s: loads within ceil(1.1 * %d/%d) = %d"
           % (what, len(projects), len(workers), bound),
           "<= %d" % bound, loads)
    moved = [p for p in projects if before.get(p) != after.get(p)]
    return moved, loads


def check_scale_down(what, projects, before, after, gone, workers):
    """A worker left (`gone`): each of its projects moved to a remaining
    worker; of the others at most 2 moved (the load bound may displace one
    or two).  Returns (moved, extra moves, loads)."""
    moved, loads = check_movement(what, projects, before, after, workers)
    theirs = [p for p in projects if before.get(p) == gone]
    extra = [p for p in moved if before.get(p) != gone]
    expect(set(theirs) <= set(moved), "%s: every project of %s moved"
           % (what, gone), sorted(theirs), sorted(moved))
    expect(len(extra) <= 2,
           "%s: movement close to the minimum (only %s's %d projects, plus "
           "at most 2 for the load bound)" % (what, gone, len(theirs)),
           "<= 2 other moves",
           {p: (before.get(p), after.get(p)) for p in extra})
    return moved, extra, loads


def worker_counters(f):
    """{worker: (engages, disengages)} from every running worker's
    /status."""
    out = {}
    for name in f.workers:
        doc = f.worker_status(name) or {}
        c = doc.get("counters") or {}
        out[name] = (c.get("engages"), c.get("disengages"))
    return out


def reject_counters(f, coord):
    """{reason: n, ..., "accepted": n} from the coordinator's /metrics."""
    st, body = http("GET", f.coords[coord].urls["status"] + "/metrics")
    if st != 200:
        return None
    c = rogue.parse_counters(body.decode("utf-8", "replace"))
    return c if all(r in c for r in rogue.REASONS) else None


def rogue_frames(f, bins, projects):
    """Rogue frames on the leader's fleet port, each from a connection
    that never said HELLO: every one raises its own rejection counter by
    exactly one, no other, and the fleet does not notice."""
    t0 = time.monotonic()
    try:
        n = rogue.self_check(bins["root"])
    except (AssertionError, OSError) as e:
        raise Failure("rogue.py self-check: %s" % e)
    leader = f.leader()
    expect(leader is not None, "a leader for the rogue frames", "a leader",
           None)
    doc = f.coord_status(leader)
    cur = doc["leader"]["term"]
    # Only a worker frame of an *older term of the same Lease uid* is
    # refused as lower_term (coordinator/fleet.c on_frame; docs/fleet.md
    # "Leadership"); terms start at transitions 0, so this phase runs
    # after the coordinator failover, which raised them.
    expect(cur.get("uid") and cur.get("transitions", 0) >= 1,
           "the leader's term after a failover", "transitions >= 1", cur)
    url = f.coords[leader].urls["fleet"]
    key = rogue.read_key(f.keyfile)
    _, owners0 = f.wait_settled(projects, 10 * SCALE)
    wc0 = worker_counters(f)

    def counters():
        c = {}

        def got():
            c["c"] = reject_counters(f, leader)
            return c["c"] is not None, "no counters in /metrics"
        wait_until("the leader's /metrics", got, 10 * SCALE)
        return c["c"]

    start = counters()
    conns = []
    seen = []

    def one(reason, what, send):
        before = counters()
        send()
        last = {}

        def raised():
            last["c"] = c = counters()
            return c[reason] >= before[reason] + 1, \
                {r: c[r] - before[r] for r in rogue.REASONS}
        wait_until("%s: rejection counter %s + 1" % (what, reason), raised,
                   10 * SCALE, interval=0.05)
        delta = {r: last["c"][r] - before[r] for r in rogue.REASONS}
        want = {r: int(r == reason) for r in rogue.REASONS}
        expect(delta == want, "%s: exactly one rejection, counted as %s"
               % (what, reason), want, delta)
        seen.append("%s -> %s" % (what, reason))

    def conn():
        try:
            c = rogue.SPConn(url, timeout=10 * SCALE)
        except OSError as e:   # ConnectionError is one
            raise Failure("pair1 connection to %s: %s" % (url, e))
        conns.append(c)
        return c

    try:
        cur_t = rogue.term(cur["uid"], cur["transitions"])
        # 1. Truncated msgpack: a valid heartbeat, then one whose payload
        # is cut short (header and MAC right), on one connection.  The
        # pipe is ordered, so the rejection also proves that the valid
        # one was processed (and accepted) first.
        sess = rogue.new_session()
        a = conn()
        orig = rogue.seal(key, rogue.HEARTBEAT,
                          rogue.pack(rogue.heartbeat(1, cur_t)), sess, 1)
        whole = rogue.pack(rogue.heartbeat(2, cur_t))
        trunc = rogue.seal(key, rogue.HEARTBEAT, whole[:len(whole) - 6],
                           sess, 2)
        acc0 = counters()["accepted"]
        one("malformed", "truncated msgpack",
            lambda: (a.send(orig), a.send(trunc)))
        expect(counters()["accepted"] > acc0,
               "the valid heartbeat before it was accepted", "> %d" % acc0,
               counters()["accepted"])
        # 2. Replayed: that accepted heartbeat, byte for byte, on a new
        # connection.
        one("replay", "replayed frame", lambda: conn().send(orig))
        # 3. Wrong key: well-formed, signed with another 32-byte key.
        wrong = os.urandom(32)
        one("bad_auth", "frame signed with a wrong key",
            lambda: conn().send(rogue.seal(
                wrong, rogue.HEARTBEAT,
                rogue.pack(rogue.heartbeat(1, cur_t)),
                rogue.new_session(), 1)))
        # 4. Right key, lower term: the leader's Lease uid, transitions
        # one below.
        low = rogue.term(cur["uid"], cur["transitions"] - 1)
        one("lower_term", "right key, term %s/%d below the leader's %d"
            % (cur["uid"][:8], low["transitions"], cur["transitions"]),
            lambda: conn().send(rogue.seal(
                key, rogue.HEARTBEAT, rogue.pack(rogue.heartbeat(1, low)),
                rogue.new_session(), 1)))
        # 5. Oversize: one byte above the 4 MiB frame bound, otherwise a
        # valid frame (right key, well-formed msgpack padded with a long
        # string).  NNG must let it through (NNG_OPT_RECVMAXSZ above the
        # bound) for the coordinator to count it.
        sess = rogue.new_session()
        probe = 70000
        size0 = len(rogue.seal(key, rogue.HEARTBEAT, rogue.pack(
            rogue.heartbeat(1, cur_t, pad="x" * probe)), sess, 1))
        pad = probe + rogue.MAX_FRAME_DEFAULT + 1 - size0
        big = rogue.seal(key, rogue.HEARTBEAT, rogue.pack(
            rogue.heartbeat(1, cur_t, pad="x" * pad)), sess, 1)
        expect(len(big) == rogue.MAX_FRAME_DEFAULT + 1,
               "the oversize frame's size", rogue.MAX_FRAME_DEFAULT + 1,
               len(big))
        one("too_big", "frame of %d bytes" % len(big),
            lambda: conn().send(big))
        # 6. Far beyond NNG's receive limit: a 64 MiB message announced.
        # NNG itself must refuse it and close the pipe at once (the
        # coordinator's NNG_OPT_RECVMAXSZ bounds what a peer can make it
        # allocate); our code never sees it, so no counter moves (checked
        # below with the totals).
        huge = 64 * 1024 * 1024
        c6 = conn()
        c6.announce(huge)
        expect(c6.closed_by_peer(10 * SCALE),
               "a %d MiB message announced: NNG closes the pipe"
               % (huge >> 20), "closed at once",
               "still open after %d s" % (10 * SCALE))
        seen.append("%d MiB announced -> pipe closed by NNG, not counted"
                    % (huge >> 20))
    finally:
        for c in conns:
            c.close()

    end = counters()
    delta = {r: end[r] - start[r] for r in rogue.REASONS}
    want = {r: int(r in ("malformed", "replay", "bad_auth", "lower_term",
                         "too_big")) for r in rogue.REASONS}
    expect(delta == want, "rejection counters over the rogue phase", want,
           delta)
    lines = [rec.get("msg", "") for rec in f.coords[leader].log_lines()
             if rec.get("id") == "PROTO-REJECT"]
    unlogged = [r for r in want if want[r] and
                not any("(reason %s)" % r in m for m in lines)]
    expect(not unlogged, "each rejection logged as PROTO-REJECT", "all",
           "missing %s" % unlogged)
    # The fleet did not notice.
    st, _ = http("GET", f.coords[leader].urls["status"] + "/healthz")
    expect(st == 200 and f.leader() == leader,
           "the leader is healthy and still leads", "200, %s" % leader,
           "%s, %s" % (st, f.leader()))
    _, owners1 = f.wait_settled(projects, 10 * SCALE)
    expect(owners1 == owners0, "no owner changed during the rogue frames",
           owners0, owners1)
    wc1 = worker_counters(f)
    expect(wc1 == wc0, "no worker engaged or disengaged during the rogue "
           "frames", wc0, wc1)
    wdoc = f.coord_status(leader) or {}
    states = {w["name"]: w.get("state")
              for w in wdoc.get("workers", []) if w["name"] in f.workers}
    expect(states == {w: "active" for w in f.workers},
           "every worker still a member (active)", "active", states)
    ok("rogue-frames", "encoder reproduces the 1.0 vector (%d bytes); %s; "
       "fleet unaffected (%.1f s)" % (n, "; ".join(seen),
                                      time.monotonic() - t0))


def run(f, bins, mode):
    killed = {}
    f.start_kubesim()
    f.start_coordinator("coord-a")
    f.start_coordinator("coord-b")
    leader = f.wait_leader(30 * SCALE)
    # Cold start: the projects exist before any worker; the three workers
    # start together (their processes launched at once), and the leader
    # lets the worker set settle before engaging, so no project is
    # engaged on the first worker up only to move a moment later.
    projects = ["p%02d" % i for i in range(12)]
    for p in projects:
        f.create_project(p)
    f.start_workers(["mcfleet-worker-%d" % i for i in range(3)])
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

    t, ps = f.wait_all_synced(projects, 60 * SCALE)
    ldoc = f.coord_status(leader) or {}
    hand = (ldoc.get("rebalance") or {}).get("handoffs")
    dis = {w: c[1] for w, c in worker_counters(f).items()}
    expect(hand == 0 and not any(dis.values()),
           "cold start: no project moved (the worker set settled first)",
           "0 hand-offs, 0 disengages",
           {"handoffs": hand, "disengages": dis})
    ok("engage", "cold start: 12 projects owned and synced in %.1f s, none "
       "moved" % t)
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
    _, before = f.wait_settled(projects, 60 * SCALE)
    f.start_worker("mcfleet-worker-3")
    def moved_to_new():
        o = f.owners()
        return any(v == "mcfleet-worker-3" for v in o.values()), o
    wait_until("the new worker gets projects", moved_to_new, 60 * SCALE)
    t, after = f.wait_settled(projects, 60 * SCALE)
    moved, loads = check_movement("scale-up 3 -> 4", projects, before, after,
                                  list(f.workers))
    # The load bound (ceil(1.1 * 12/4) = 4) may move a project or two
    # between old workers as well; the rest go to the new one.
    expect(sum(after[p] == "mcfleet-worker-3" for p in moved) >= 2,
           "on scale-up projects move to the new worker", ">= 2 to -3",
           {p: (before[p], after[p]) for p in moved})
    expect(len(moved) <= 6, "movement close to the minimum (3 of 12)",
           "<= 6 moves", len(moved))
    ok("scale-up", "%d projects moved (%d to the new worker); loads %s"
       % (len(moved), sum(after[p] == "mcfleet-worker-3" for p in moved),
          sorted(loads.values())))

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
    _, before = f.wait_settled(projects, 60 * SCALE)
    owned = [p for p in projects if before.get(p) == victim]
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
    _, after = f.wait_settled(projects, 30 * SCALE, owners_among=survivors)
    moved, extra, loads = check_scale_down("kill-9 4 -> 3", projects, before,
                                           after, victim, survivors)
    for i, p in enumerate(owned):
        f.patch_mr(p, "mr", {"v": "k%d" % i})
    for i, p in enumerate(owned):
        wait_until("MyResource in %s converges on its new owner" % p,
                   lambda p=p, i=i: f.mr_converged(p, "mr",
                                                   {"v": "k%d" % i}),
                   60 * SCALE)
    ok("kill-9", "%d projects of the killed worker synced elsewhere in "
       "%.1f s and reconcile there; %d other moves; loads %s"
       % (len(owned), took, len(extra), sorted(loads.values())))

    # -- SIGTERM a worker: hand-off --
    leaving = "mcfleet-worker-2"
    _, before = f.wait_settled(projects, 60 * SCALE)
    owned = [p for p in projects if before.get(p) == leaving]
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
    expect(len(f.workers) == 2, "scaled down to 2 workers", 2,
           sorted(f.workers))
    _, after = f.wait_settled(projects, 30 * SCALE,
                              owners_among=list(f.workers))
    moved, extra, loads = check_scale_down("sigterm 3 -> 2", projects,
                                           before, after, leaving,
                                           list(f.workers))
    ok("sigterm", "%d projects handed off (%d other moves); exit 0 after "
       "%.1f s; 3 -> 4 -> 2 workers, loads %s"
       % (len(owned), len(extra), secs, sorted(loads.values())))

    # -- kill -9 the leading coordinator --
    _, before = f.wait_settled(projects, 30 * SCALE)
    counters = worker_counters(f)
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
    _, after = f.wait_settled(projects, 30 * SCALE)
    moved = [p for p in projects if before.get(p) != after.get(p)]
    expect(not moved, "no project moves on a coordinator failover",
           "none", {p: (before.get(p), after.get(p)) for p in moved})
    now = worker_counters(f)
    expect(now == counters, "no worker engaged or disengaged anything on "
           "a coordinator failover", counters, now)
    ok("failover", "%s leads; no project moved; engage/disengage counters "
       "unchanged" % new)

    rogue_frames(f, bins, projects)

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
