#!/usr/bin/python3
"""The fleet over TLS (tls+tcp://, mutual): kubesim, one coordinator, workers.

Usage: /usr/bin/python3 tests/e2e/fleet_tls_test.py KUBESIM COORDINATOR
           WORKER MCFLEETCTL REPO_ROOT

The openssl tool makes a CA, a coordinator certificate for the DNS name
coordinator.test (NNG's TLS engine matches DNS names, not IP addresses, so
workers name it with --tls-server-name) and a worker certificate.

  tls       the coordinator listens on tls+tcp:// and requires client
            certificates; its Lease advertises the tls+tcp:// address.
  join      two workers with the CA and a certificate join and every
            project is owned and synced.
  refused   a worker trusting another CA never becomes active (its Lease
            makes it "joining", no HELLO gets through) and no project
            moves; their Leases say they run nothing, so engages are not
            held for their reports: a new project is engaged meanwhile; a worker
            with the right CA but no client certificate does not either.
  downgrade a worker given --tls-ca refuses a plaintext address: started
            against a plaintext coordinator Lease it never joins.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SCALE, Failure, Fleet, expect, ok, wait_until,  # noqa
                      SANITIZER_MARKS)


def sh(cmd, cwd):
    r = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise Failure("openssl: %s: %s" % (cmd, r.stderr[-500:]))


def make_certs(d):
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    sh("openssl req -x509 %s -subj /CN=e2e-ca -days 1 -keyout ca.key "
       "-out ca.crt" % ec, d)
    sh("openssl req -x509 %s -subj /CN=other-ca -days 1 -keyout other.key "
       "-out other.crt" % ec, d)
    sh("openssl req %s -subj /CN=coordinator.test -keyout coord.key "
       "-out coord.csr && printf 'subjectAltName=DNS:coordinator.test\\n' "
       ">coord.ext && openssl x509 -req -in coord.csr -CA ca.crt -CAkey "
       "ca.key -CAcreateserial -days 1 -extfile coord.ext -out coord.crt"
       % ec, d)
    sh("openssl req %s -subj /CN=mcfleet-worker -keyout worker.key "
       "-out worker.csr && openssl x509 -req -in worker.csr -CA ca.crt "
       "-CAkey ca.key -CAcreateserial -days 1 -out worker.crt" % ec, d)


def main():
    if len(sys.argv) < 6:
        print(__doc__)
        return 2
    bins = {"kubesim": sys.argv[1], "coordinator": sys.argv[2],
            "worker": sys.argv[3], "ctl": sys.argv[4], "root": sys.argv[5]}
    f = Fleet(bins, "e2e_fleet_tls")
    try:
        run(f)
    except Failure as e:
        print("FAIL %s\n%s" % (e, f.diagnostics()), flush=True)
        return 1
    return 0


def members(f, coord):
    doc = f.coord_status(coord) or {}
    return {w.get("name"): w.get("state") for w in doc.get("workers") or []}


def run(f):
    d = f.work
    make_certs(d)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    f.start_kubesim()
    f.start_coordinator("coord-tls", "--listen", "tls+tcp://127.0.0.1:0",
                        "--tls-cert", p("coord.crt"), "--tls-key",
                        p("coord.key"), "--tls-ca", p("ca.crt"))
    leader = f.wait_leader(30 * SCALE)
    addr = (f.coord_status(leader) or {}).get("leader", {}).get("address")
    expect(addr and addr.startswith("tls+tcp://127.0.0.1:") and
           not addr.endswith(":0"),
           "the Lease advertises the tls+tcp:// address", "tls+tcp://...",
           addr)
    ok("tls", "the coordinator listens on %s (mutual TLS)" % addr)

    good = ["--tls-ca", p("ca.crt"), "--tls-cert", p("worker.crt"),
            "--tls-key", p("worker.key"), "--tls-server-name",
            "coordinator.test"]
    for i in range(2):
        f.start_worker("mcfleet-worker-%d" % i, *good)
    projects = ["t%02d" % i for i in range(6)]
    for pr in projects:
        f.create_project(pr)
    t, _ = f.wait_all_synced(projects, 60 * SCALE)
    ok("join", "2 workers over TLS; 6 projects synced in %.1f s" % t)

    f.start_worker("mcfleet-worker-other", "--tls-ca", p("other.crt"),
                   "--tls-cert", p("worker.crt"), "--tls-key",
                   p("worker.key"), "--tls-server-name", "coordinator.test")
    f.start_worker("mcfleet-worker-nocert", "--tls-ca", p("ca.crt"),
                   "--tls-server-name", "coordinator.test")
    # Both have a Lease (they are alive: "joining") but neither can say
    # HELLO: the coordinator never makes them active, and no project
    # moves to them.
    before = f.owners()
    deadline = time.monotonic() + 6 * SCALE
    while time.monotonic() < deadline:
        m = members(f, leader)
        for w in ("mcfleet-worker-other", "mcfleet-worker-nocert"):
            expect(m.get(w) != "active",
                   "%s (refused by TLS) is not an active member" % w,
                   "not active", m.get(w))
        time.sleep(0.5)
    after = f.owners()
    expect(before == after, "no project moved", before, after)
    # Their Leases say they run nothing, so the leader does not wait for
    # their reports: a new project is engaged on a reachable worker.
    f.create_project("t-new")
    t, _ = f.wait_all_synced(projects + ["t-new"], 30 * SCALE,
                             owners_among=["mcfleet-worker-0",
                                           "mcfleet-worker-1"])
    held = (f.coord_status(leader) or {}).get("engages_held_for")
    expect(not held, "engages are held for no one", "[]", held)
    projects.append("t-new")
    ws = f.worker_status("mcfleet-worker-other") or {}
    expect(not ws.get("connected"), "the worker trusting another CA is not "
           "connected", False, ws.get("connected"))
    ok("refused", "a worker trusting another CA and one without a client "
       "certificate never joined; owners unchanged; a new project was "
       "engaged meanwhile (%.1f s)" % t)

    for name in ("mcfleet-worker-other", "mcfleet-worker-nocert"):
        code, _ = f.workers[name].terminate(30 * SCALE)
        expect(code == 0, "%s exits 0 on SIGTERM" % name, 0, code)
        f.retire(name)

    # A worker with --tls-ca against a plaintext coordinator: refused.
    f.start_coordinator("coord-plain", "--lease-name", "plain-coordinator")
    f.start_worker("mcfleet-worker-strict", "--coordinator-lease",
                   "plain-coordinator", *good)
    def refused():
        err = f.workers["mcfleet-worker-strict"].stderr_text()
        return "refusing plaintext" in err, err[-300:]
    wait_until("the strict worker refuses the plaintext address", refused,
               30 * SCALE)
    ok("downgrade", "a worker with --tls-ca refused a plaintext address")

    # The first TLS worker hands its projects to the second (the strict
    # worker, unreachable, is passed over) well within its drain timeout.
    code, secs = f.workers["mcfleet-worker-0"].terminate(30 * SCALE)
    expect(code == 0 and secs < 10 * SCALE, "mcfleet-worker-0 hands off "
           "and exits 0 on SIGTERM", "0 within 10 s", (code, secs))
    f.retire("mcfleet-worker-0")
    f.wait_all_synced(projects, 30 * SCALE, owners_among=["mcfleet-worker-1"])
    ok("handoff", "SIGTERM: projects handed to mcfleet-worker-1, exit 0 "
       "after %.1f s" % secs)
    for name, pr in list(f.workers.items()):
        code, _ = pr.terminate(30 * SCALE)
        expect(code == 0, "worker %s exits 0 on SIGTERM" % name, 0, code)
        expect(not any(m in pr.stderr_text() for m in SANITIZER_MARKS),
               "no sanitizer report from %s" % name, "none",
               pr.stderr_tail())
    for name, pr in f.coords.items():
        code, _ = pr.terminate(15 * SCALE)
        expect(code == 0, "coordinator %s exits 0 on SIGTERM" % name, 0, code)
    ok("stop", "every process exited 0")


if __name__ == "__main__":
    sys.exit(main())
