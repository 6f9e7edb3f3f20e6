#!/usr/bin/python3
"""fleet_bench.py — the sharded fleet's benchmark (issue 5 §6,
docs/BENCHMARKS.md "Fleet (issue 5)").

Usage:
  /usr/bin/python3 tests/bench/fleet_bench.py [--smoke] [--repeat N]
      [--build DIR | --kubesim K --coordinator C --worker W] [--root DIR]
      [--projects N] [--workers N] [--probes N] [--probe-rate R]
      [--mem-projects N] [--cpu-window S] [--only a,b,...]

Everything runs on 127.0.0.1: kubesim (no simulated project controller:
the bench flips each Project's Ready condition itself), a coordinator pair
and the workers, with the short timing knobs of tests/e2e/fleetlib.py
(printed in the header: worker Lease 3 s renewed every 1 s, coordinator
Lease 3 s, heartbeats 500 ms, disengage grace 2 s, drain timeout 20 s,
default --max-concurrent-engages 32).  Every project plane gets the
MyResource CRD before its Project turns Ready, so each engaged project
runs the controller's informers (MyResources, ConfigMaps) for real; the
projects hold no objects (idle).

One line per metric, `metric value unit target PASS|FAIL|smoke`, and
lines starting with "# " for information.  The metrics:

  engage_p50_ms, engage_p99_ms
      With --projects (1,000) engaged on --workers (4), --probes (200) of
      them are switched Ready False, disengaged, then switched Ready True
      again one by one at --probe-rate (10/s).  Per probe: from the server
      time of the status PATCH that set Ready=True (kubesim's request log,
      microseconds; the condition's lastTransitionTime has only seconds)
      to the `since` (milliseconds) of state `synced` in the owning
      worker's /status.  The worker samples its projects' informer state
      every 200 ms, so `since` is up to 200 ms after the informers synced:
      that delay is part of the figure.  Pooled over repeats.
                                                  p99 < 1000 ms
  failover_p50_s, failover_p99_s
      kill -9 one worker (a different one each repeat); per project it
      owned: from the kill to `since` of `synced` on its new owner.  Pooled
      over repeats.  Dominated by the worker Lease (3 s here; the
      coordinator waits 1.1 x the duration after the last renewal it saw).
                                                  <= 5 s
  handoff_gap_p50_ms, handoff_gap_p99_ms
      SIGTERM one worker; per project it handed off: from its "disengaged
      cluster P" log line (the controller manager logs it once no
      reconcile of P runs: the confirmed stop) to `since` of `synced` on
      the new owner.  Pooled over repeats.        p99 < 1000 ms
  handoff_overlaps
      ownership intervals ("engaged cluster P" .. "disengaged cluster P",
      from every worker's log, fleetlib.ownership_intervals; a killed
      process's intervals end at its kill) of two workers for one project
      that overlap, over the whole run.           0
  mem_per_project_kib
      One worker, --mem-projects (2,000) idle projects: (VmRSS with all of
      them engaged and synced, after 5 s settling) - (VmRSS of the same
      process joined with none engaged), / the count.  A fresh worker
      process per repeat; median over repeats.  --mem-cycles N (1) then
      disengages and engages everything again N-1 times and prints the
      RSS of each cycle as "#" lines (churn; not the metric).
                                                  <= 64 KiB
  coord_cpu_pct_per_1k
      The leading coordinator's utime+stime (/proc/PID/stat) over
      --cpu-window (20 s) at steady state (every project synced, nothing
      changing), in % of one core, scaled to 1,000 projects (x 1000 /
      --projects).  Median over repeats.          <= 5 %

--smoke runs small sizes (40 projects, 10 probes, 200 projects for the
memory, 5 s CPU window) in about a minute; its verdict word is "smoke"
(the targets are defined for the full sizes), and it exits 0 once every
metric was measured, sane (loose bounds, printed) and no process crashed;
an overlap fails a smoke run too.

Exit codes: 0 every metric measured (and, in a full run, met its target);
1 a full run missed a target; 2 an error (a process died, a wait ran out,
a metric missing or insane in a smoke run, usage).
"""

import argparse
import concurrent.futures
import json
import math
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import fleetlib  # noqa: E402
from fleetlib import (SCALE, Failure, Fleet, Proc, expect, http,  # noqa: E402
                      http_json, parse_ts, PROJ_API)

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
CLK_TCK = os.sysconf("SC_CLK_TCK")
KNOBS = ("worker --lease-duration 3s --renew-period 1s --heartbeat-interval "
         "500ms --drain-timeout 20s; coordinator --lease-duration 3s "
         "--renew-deadline 2s --retry-period 500ms --heartbeat-interval 500ms "
         "--disengage-grace 2s, --max-concurrent-engages 32 (default)")


def info(msg):
    print("# " + msg, flush=True)


def pct(v, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(v)
    k = max(0, min(len(s) - 1, int(math.ceil(q / 100.0 * len(s))) - 1))
    return s[k]


class BenchError(Exception):
    pass


# ---- the fleet, as the bench runs it ---------------------------------------

class BenchFleet(Fleet):
    """fleetlib.Fleet with kubesim's project controller off (the bench sets
    Ready itself, to know when to the microsecond) and restartable workers
    whose every process writes its own stderr file."""

    def __init__(self, bins, name):
        Fleet.__init__(self, bins, name, "external")
        self.gen = {}
        with open(os.path.join(bins["root"], "deploy", "crds",
                               "myresources.example.mcfleet.io.yaml")) as f:
            import yaml
            self.crd = yaml.safe_load(f)

    def start_kubesim(self, *extra):
        self.sim = Proc("kubesim", [self.bins["kubesim"], "--listen",
                                    "127.0.0.1:0", "--kubeconfig-out",
                                    self.kc, "--request-log", "200000",
                                    "--history-events", "200000"] +
                        list(extra), self.work, roles=("",)).start()
        self.url = self.sim.urls[""]
        st, _ = http_json("POST", self.url + "/api/v1/namespaces",
                          {"metadata": {"name": "mcfleet-system"}})
        expect(st == 201, "create namespace mcfleet-system", 201, st)

    def start_worker(self, name, *extra):
        g = self.gen.get(name, 0)
        self.gen[name] = g + 1
        label = name if g == 0 else "%s.%d" % (name, g)
        p = Proc(label, [self.bins["worker"], "--kubeconfig", self.kc,
                         "--name", name, "--http", "127.0.0.1:0",
                         "--key-file", self.keyfile, "--lease-duration",
                         "3s", "--renew-period", "1s",
                         "--heartbeat-interval", "500ms", "--drain-timeout",
                         "20s", "--watch-timeout", "30s"] + list(extra),
                 self.work, roles=("status",)).start()
        self.workers[name] = p
        return p

    # -- bulk API work --

    def install_crd_body(self, project):
        st, b = http_json("POST", self.plane(project) +
                          "/apis/apiextensions.k8s.io/v1/"
                          "customresourcedefinitions", self.crd)
        expect(st in (201, 409), "install the MyResource CRD in %s"
               % project, 201, "%s %r" % (st, str(b)[:300]))

    def patch_ready(self, name, status):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"status": {"conditions": [{
            "type": "Ready", "status": status,
            "reason": "Ready" if status == "True" else "Provisioning",
            "message": "set by fleet_bench", "lastTransitionTime": now}]}}
        st, b = http_json("PATCH", self.url + PROJ_API +
                          "/projects/%s/status" % name, patch,
                          "application/merge-patch+json")
        expect(st == 200, "patch Project %s status" % name, 200,
               "%s %r" % (st, b))

    def bulk(self, fn, items, threads=4):
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            for _ in ex.map(fn, items):
                pass

    def setup_projects(self, names):
        """Creates the Projects (not Ready) and the CRD in each plane."""
        self.bulk(self.create_project, names)
        self.bulk(self.install_crd_body, names)

    # -- reading the workers --

    def worker_projects(self, names=None):
        """{worker name: {project: entry}} from every live worker's
        /status (a worker that does not answer is left out)."""
        out = {}
        for n, p in self.workers.items():
            if names is not None and n not in names:
                continue
            if not p.alive():
                continue
            st, doc = http_json("GET", p.urls["status"] + "/status")
            if st != 200 or not isinstance(doc, dict):
                continue
            out[n] = {e["name"]: e for e in doc.get("projects", [])}
        return out

    def clear_reqlog(self):
        st, _ = http("DELETE", self.url + "/_sim/requests")
        expect(st in (200, 204), "DELETE /_sim/requests", "200/204", st)

    def ready_times(self, names):
        """{project: server time of its last status PATCH} from the
        request log."""
        st, body = http_json("GET", self.url + "/_sim/requests?since=0")
        expect(st == 200 and isinstance(body, dict), "GET /_sim/requests",
               200, st)
        want = set(names)
        out = {}
        pre = PROJ_API + "/projects/"
        for e in body.get("items", []):
            path = e.get("path", "")
            if e.get("method") != "PATCH" or not path.startswith(pre) or \
                    not path.endswith("/status"):
                continue
            n = path[len(pre):-len("/status")]
            if n in want:
                out[n] = parse_ts(e["time"])
        return out

    def check_alive(self, where):
        for p in [self.sim] + list(self.coords.values()) + \
                list(self.workers.values()):
            if p is not None and not p.alive():
                raise BenchError("%s: %s died (exit %s)\n%s" %
                                 (where, p.label, p.proc.returncode,
                                  p.stderr_tail()))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])    # utime, stime (14, 15)


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


def wait(what, fn, timeout, interval=0.1):
    """fleetlib.wait_until with the bench's error."""
    try:
        return fleetlib.wait_until(what, fn, timeout, interval)
    except Failure as e:
        raise BenchError(str(e))


# ---- the bench -------------------------------------------------------------

class Bench:
    def __init__(self, a, bins):
        self.a = a
        self.bins = bins
        self.code = EXIT_PASS
        self.samples = {}       # metric -> pooled samples
        self.printed = []
        self.insane = []

    def report(self, metric, value, prec, unit, target, ok, sane):
        """One metric line; `ok` the target, `sane` the smoke bound
        (a (bool, text) pair)."""
        verdict = "smoke" if self.a.smoke else ("PASS" if ok else "FAIL")
        print("%s %.*f %s %s %s" % (metric, prec, value, unit, target,
                                    verdict), flush=True)
        self.printed.append(metric)
        if not self.a.smoke and not ok and self.code < EXIT_FAIL:
            self.code = EXIT_FAIL
        good, text = sane
        if not (good and math.isfinite(value)):
            self.insane.append("%s = %r, want %s" % (metric, value, text))

    # -- the 1,000-project fleet: engage, CPU, failover, hand-off --

    def fleet_phase(self):
        a = self.a
        f = BenchFleet(self.bins, "fleet_bench")
        self.f = f
        killed = {}
        try:
            f.start_kubesim()
            f.start_coordinator("coord-a")
            f.start_coordinator("coord-b")
            names = ["mcfleet-worker-%d" % i for i in range(a.workers)]
            for n in names:
                f.start_worker(n)
            leader = f.wait_leader(30 * SCALE)
            info("leader %s; %d workers" % (leader, len(names)))

            projects = ["bp%04d" % i for i in range(a.projects)]
            t0 = time.monotonic()
            f.setup_projects(projects)
            info("created %d Projects and their CRDs in %.1f s"
                 % (len(projects), time.monotonic() - t0))
            self.cold_start(f, projects)
            f.check_alive("cold start")

            probes = projects[:a.probes]
            want = self.a.only
            for r in range(a.repeat):
                if "engage" in want:
                    self.engage_round(f, projects, probes, r)
                    f.check_alive("engage round %d" % r)
                if "cpu" in want:
                    self.cpu_round(f, projects, r)
                    f.check_alive("cpu round %d" % r)
                if "failover" in want:
                    self.failover_round(f, projects, names, r, killed)
                    f.check_alive("failover round %d" % r)
                if "handoff" in want:
                    self.handoff_round(f, projects, names, r)
                    f.check_alive("hand-off round %d" % r)

            if "engage" in want:
                self.report_dist("engage", "ms", 1000.0, 1,
                                 "<1000ms", lambda x: x < 1.0,
                                 (30.0, "< 30 s"))
            if "cpu" in want:
                v = statistics.median(self.samples["cpu"])
                self.report("coord_cpu_pct_per_1k", v, 2, "%", "<=5%",
                            v <= 5.0, (0 <= v < 400, "0..400 % (scaled)"))
            if "failover" in want:
                self.report_dist("failover", "s", 1.0, 2, "<=5s",
                                 lambda x: x <= 5.0,
                                 (60.0, "< 60 s"))
            if "handoff" in want:
                self.report_dist("handoff_gap", "ms", 1000.0, 1,
                                 "<1000ms", lambda x: x < 1.0,
                                 (30.0, "< 30 s"))
            if "handoff" in want or "failover" in want:
                ov = self.overlaps(f, killed)
                self.report("handoff_overlaps", ov, 0, "count", "0",
                            ov == 0, (ov == 0, "0 (also in a smoke run)"))
            f.check_alive("the end")
            self.stop_all(f)
        except (Failure, BenchError):
            print("# fleet diagnostics:\n" + "\n".join(
                "# " + l for l in f.diagnostics().splitlines()), flush=True)
            raise
        finally:
            self.kill_all(f)

    def report_dist(self, key, unit, mult, prec, target, okfn, sane):
        v = self.samples.get(key, [])
        if not v:
            raise BenchError("no samples for %s" % key)
        p50, p99 = pct(v, 50), pct(v, 99)
        info("%s: %d samples, min %.3f s, max %.3f s" %
             (key, len(v), min(v), max(v)))
        bound, text = sane
        good = all(x >= -0.05 for x in v) and max(v) < bound
        self.report("%s_p50_%s" % (key, unit), p50 * mult, prec, unit,
                    target, okfn(p50), (good, "-0.05 s .. " + text))
        self.report("%s_p99_%s" % (key, unit), p99 * mult, prec, unit,
                    target, okfn(p99), (good, "-0.05 s .. " + text))

    def cold_start(self, f, projects):
        """All projects Ready at once; per-project latency as information
        (it measures the pacing of --max-concurrent-engages, not the
        latency of one engage)."""
        f.clear_reqlog()
        t0 = time.monotonic()
        f.bulk(lambda n: f.patch_ready(n, "True"), projects)
        tr = f.ready_times(projects)
        since = self.wait_synced(f, projects, 120 * SCALE + len(projects) /
                                 5.0, "cold start")
        took = time.monotonic() - t0
        lat = [since[p][1] - tr[p] for p in projects if p in tr]
        loads = {}
        for p, (w, _) in since.items():
            loads[w] = loads.get(w, 0) + 1
        info("cold start: %d projects Ready at once, all synced in %.1f s; "
             "per project p50 %.2f s, p99 %.2f s; loads %s" %
             (len(projects), took, pct(lat, 50), pct(lat, 99),
              sorted(loads.values())))

    def wait_synced(self, f, projects, timeout, what, exclude=(),
                    after=None):
        """Polls every worker's /status until each project is listed
        synced by a worker not in `exclude` (with `since` >= `after` when
        given).  Returns {project: (worker, since_s)}."""
        left = set(projects)
        got = {}
        # The first synced `since` seen for each project.

        def poll():
            wp = f.worker_projects()
            for w, ps in wp.items():
                if w in exclude:
                    continue
                for p in list(left):
                    e = ps.get(p)
                    if e is None or e.get("state") != "synced":
                        continue
                    s = parse_ts(e["since"])
                    if after is not None and s < after:
                        continue
                    got[p] = (w, s)
                    left.discard(p)
            return not left, "%d of %d not synced yet, e.g. %s" % (
                len(left), len(projects), sorted(left)[:5])
        wait("%s: projects synced" % what, poll, timeout, 0.1)
        return got

    def engage_round(self, f, projects, probes, r):
        a = self.a
        # Ready False: the coordinator disengages after the grace (2 s).
        f.bulk(lambda n: f.patch_ready(n, "False"), probes)
        pset = set(probes)

        def off():
            wp = f.worker_projects()
            held = [p for ps in wp.values() for p in ps if p in pset]
            return not held, "%d probes still engaged" % len(held)
        wait("probes disengaged after Ready=False", off, 60 * SCALE, 0.2)
        time.sleep(0.5)
        f.clear_reqlog()
        t0 = time.monotonic()
        w0 = time.time()
        gap = 1.0 / a.probe_rate
        for i, p in enumerate(probes):
            slot = t0 + i * gap
            d = slot - time.monotonic()
            if d > 0:
                time.sleep(d)
            f.patch_ready(p, "True")
        tr = f.ready_times(probes)
        expect(len(tr) == len(probes), "request log has every probe PATCH",
               len(probes), len(tr))
        since = self.wait_synced(f, probes, 60 * SCALE, "engage round",
                                 after=w0)
        lat = [since[p][1] - tr[p] for p in probes]
        self.samples.setdefault("engage", []).extend(lat)
        info("engage round %d: %d probes at %.0f/s among %d projects: p50 "
             "%.0f ms, p99 %.0f ms, max %.0f ms" %
             (r, len(probes), a.probe_rate, len(projects),
              pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, max(lat) * 1e3))
        # Wait until every project is synced again before the next phase.
        self.wait_synced(f, projects, 60 * SCALE, "after engage round")

    def cpu_round(self, f, projects, r):
        a = self.a
        leader = f.wait_leader(30 * SCALE)
        time.sleep(2.0)
        pids = {"leader": f.coords[leader].pid}
        for n, p in f.coords.items():
            if n != leader:
                pids["standby"] = p.pid
        for n, p in f.workers.items():
            pids[n] = p.pid
        pids["kubesim"] = f.sim.pid
        t0 = time.monotonic()
        c0 = {k: cpu_ticks(v) for k, v in pids.items()}
        time.sleep(a.cpu_window)
        c1 = {k: cpu_ticks(v) for k, v in pids.items()}
        el = time.monotonic() - t0
        use = {k: (c1[k] - c0[k]) / CLK_TCK / el * 100.0 for k in pids}
        per1k = use["leader"] * 1000.0 / len(projects)
        self.samples.setdefault("cpu", []).append(per1k)
        info("cpu round %d: %.1f s window, %% of one core: %s; leader "
             "%.2f %% for %d projects = %.2f %% per 1,000" %
             (r, el, ", ".join("%s %.2f" % (k, v) for k, v in use.items()),
              use["leader"], len(projects), per1k))

    def owned_by(self, f, worker):
        wp = f.worker_projects([worker])
        return sorted((wp.get(worker) or {}).keys())

    def failover_round(self, f, projects, names, r, killed):
        victim = names[r % len(names)]
        vdoc = f.worker_status(victim) or {}
        owned = self.owned_by(f, victim)
        expect(owned, "the victim %s owns projects" % victim, "> 0", 0)
        survivors = [n for n in names if n != victim]
        t_kill = time.time()
        killed[(victim, vdoc.get("incarnation"))] = t_kill
        f.workers[victim].kill9()
        f.retire(victim)
        since = self.wait_synced(f, owned, 60 * SCALE, "failover",
                                 exclude=(victim,), after=t_kill)
        lat = [since[p][1] - t_kill for p in owned]
        self.samples.setdefault("failover", []).extend(lat)
        info("failover round %d: kill -9 %s (%d projects): synced elsewhere "
             "p50 %.2f s, p99 %.2f s, all %.2f s after the kill" %
             (r, victim, len(owned), pct(lat, 50), pct(lat, 99), max(lat)))
        self.rejoin(f, victim, projects)

    def rejoin(self, f, name, projects):
        """Starts `name` again and waits for the rebalance to end: it owns
        projects and every project is synced."""
        f.start_worker(name)

        def back():
            wp = f.worker_projects()
            mine = [p for p, e in (wp.get(name) or {}).items()
                    if e.get("state") == "synced"]
            return len(mine) > 0, "%s has %d synced" % (name, len(mine))
        wait("%s gets projects again" % name, back, 60 * SCALE, 0.2)
        t, ps = f.wait_all_synced(projects, 120 * SCALE)
        # The coordinator may still be moving projects: wait until nothing
        # is in flight (every project synced on its desired owner).

        def settled():
            ps = f.projects_state() or {}
            moving = [p for p in projects
                      if (ps.get(p) or {}).get("state") != "synced" or
                      ps[p].get("owner") != ps[p].get("desired")]
            return not moving, "%d not settled, e.g. %s" % (
                len(moving), moving[:5])
        wait("rebalance after %s rejoined" % name, settled, 120 * SCALE, 0.3)

    def handoff_round(self, f, projects, names, r):
        leaving = names[(r + 1) % len(names)]
        owned = self.owned_by(f, leaving)
        expect(owned, "the leaving %s owns projects" % leaving, "> 0", 0)
        proc = f.workers[leaving]
        inc = (f.worker_status(leaving) or {}).get("incarnation")
        t_term = time.time()
        code, secs = proc.terminate(60 * SCALE)
        if code != 0:
            raise BenchError("SIGTERM'd worker %s exited %s after %.1f s\n%s"
                             % (leaving, code, secs, proc.stderr_tail()))
        f.retire(leaving)
        since = self.wait_synced(f, owned, 60 * SCALE, "hand-off",
                                 exclude=(leaving,), after=t_term)
        stops = {}
        for rec in proc.log_lines():
            m = re.match(r"disengaged cluster (\S+)", rec.get("msg", ""))
            if m and rec.get("incarnation") == inc:
                t = parse_ts(rec["ts"])
                if t >= t_term:
                    stops[m.group(1)] = t
        missing = [p for p in owned if p not in stops]
        expect(not missing, "every project of %s has a confirmed stop in "
               "its log" % leaving, "all", missing[:5])
        gaps = [since[p][1] - stops[p] for p in owned]
        self.samples.setdefault("handoff_gap", []).extend(gaps)
        last_stop = max(stops[p] for p in owned)
        info("hand-off round %d: SIGTERM %s (%d projects), exit 0 after "
             "%.1f s; stop -> synced gap p50 %.0f ms, p99 %.0f ms, min %.0f "
             "ms, max %.0f ms; last stop %.2f s after SIGTERM" %
             (r, leaving, len(owned), secs, pct(gaps, 50) * 1e3,
              pct(gaps, 99) * 1e3, min(gaps) * 1e3, max(gaps) * 1e3,
              last_stop - t_term))
        self.rejoin(f, leaving, projects)

    def overlaps(self, f, killed):
        ivs = f.ownership_intervals()
        byproj = {}
        for (proj, w, inc), lst in ivs.items():
            for a, b in lst:
                if b is None:
                    b = killed.get((w, inc))
                byproj.setdefault(proj, []).append((a, b, w, inc))
        n, ex = 0, []
        for proj, lst in byproj.items():
            lst.sort(key=lambda x: x[0])
            for i in range(1, len(lst)):
                pa, pb, pw, pi = lst[i - 1]
                ca, cb, cw, ci = lst[i]
                if (pw, pi) != (cw, ci) and (pb is None or pb > ca):
                    n += 1
                    ex.append("%s: %s/%s until %s, %s/%s from %s" %
                              (proj, pw, pi, pb, cw, ci, ca))
        info("ownership intervals: %d over %d projects; %d overlaps%s" %
             (sum(len(v) for v in byproj.values()), len(byproj), n,
              (": " + "; ".join(ex[:3])) if ex else ""))
        return n

    def stop_all(self, f):
        """SIGTERM every process; a non-zero exit is an error."""
        for n, p in list(f.workers.items()):
            code, secs = p.terminate(60 * SCALE)
            if code != 0:
                raise BenchError("worker %s exited %s on SIGTERM\n%s" %
                                 (n, code, p.stderr_tail()))
        for n, p in f.coords.items():
            if p.alive():
                code, secs = p.terminate(30 * SCALE)
                if code != 0:
                    raise BenchError("coordinator %s exited %s on SIGTERM\n%s"
                                     % (n, code, p.stderr_tail()))

    def kill_all(self, f):
        for p in list(f.workers.values()) + list(f.coords.values()) + \
                [f.sim]:
            if p is not None and p.proc is not None and p.alive():
                p.kill9()

    # -- memory: one worker, 2,000 idle projects --

    def mem_phase(self):
        a = self.a
        f = BenchFleet(self.bins, "fleet_bench_mem")
        try:
            f.start_kubesim()
            f.start_coordinator("coord-a")
            f.wait_leader(30 * SCALE)
            projects = ["mp%04d" % i for i in range(a.mem_projects)]
            t0 = time.monotonic()
            f.setup_projects(projects)
            info("memory: created %d Projects and their CRDs in %.1f s"
                 % (len(projects), time.monotonic() - t0))
            vals = []
            for r in range(a.repeat):
                vals.append(self.mem_round(f, projects, r))
                f.check_alive("memory round %d" % r)
            v = statistics.median(vals)
            self.report("mem_per_project_kib", v, 1, "KiB", "<=64KiB",
                        v <= 64.0, (0 < v < 16384, "0 .. 16384 KiB"))
            for n, p in f.coords.items():
                code, _ = p.terminate(30 * SCALE)
                if code != 0:
                    raise BenchError("coordinator %s exited %s" % (n, code))
        except (Failure, BenchError):
            print("# memory diagnostics:\n" + "\n".join(
                "# " + l for l in f.diagnostics().splitlines()), flush=True)
            raise
        finally:
            self.kill_all(f)

    def mem_round(self, f, projects, r):
        name = "mcfleet-worker-m"
        p = f.start_worker(name)

        def joined():
            doc = f.worker_status(name) or {}
            return (doc.get("connected") and doc.get("own_lease_held") and
                    doc.get("applied_version", 0) > 0), doc.get("coordinator")
        wait("the memory worker joins", joined, 30 * SCALE, 0.2)
        time.sleep(3.0)
        rss0 = vmrss_kib(p.pid)
        first = None
        for c in range(self.a.mem_cycles):
            t0 = time.monotonic()
            f.bulk(lambda n: f.patch_ready(n, "True"), projects)
            self.wait_synced(f, projects, 120 * SCALE + len(projects) / 5.0,
                             "memory")
            took = time.monotonic() - t0
            time.sleep(5.0)
            rss1 = vmrss_kib(p.pid)
            doc = f.worker_status(name) or {}
            tot = doc.get("totals") or {}
            per = (rss1 - rss0) / float(len(projects))
            if first is None:
                first = per
            # Everything off again (the grace is 2 s).
            f.bulk(lambda n: f.patch_ready(n, "False"), projects)

            def none():
                d = f.worker_status(name) or {}
                return not d.get("projects"), len(d.get("projects") or [])
            wait("the memory worker disengages everything", none,
                 120 * SCALE, 0.5)
            time.sleep(2.0)
            rss2 = vmrss_kib(p.pid)
            info("memory round %d, cycle %d: VmRSS %d KiB with 0 engaged "
                 "(fresh process), %d KiB with %d engaged and synced (in "
                 "%.1f s; worker totals %s), %d KiB after disengaging all: "
                 "%.1f KiB per project%s" %
                 (r, c, rss0, rss1, len(projects), took, json.dumps(tot),
                  rss2, per, "" if c == 0 else
                  " (after %d engage/disengage cycles; not the metric)" % c))
        code, secs = p.terminate(60 * SCALE)
        if code != 0:
            raise BenchError("memory worker exited %s\n%s" %
                             (code, p.stderr_tail()))
        f.retire(name)
        return first


def main():
    ap = argparse.ArgumentParser(
        prog="fleet_bench.py",
        description="the sharded fleet's benchmark: prints `metric value "
        "unit target PASS|FAIL|smoke` per metric")
    ap.add_argument("--smoke", action="store_true",
                    help="small sizes for CTest (verdict `smoke`)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--build", help="build directory holding the binaries")
    ap.add_argument("--kubesim")
    ap.add_argument("--coordinator")
    ap.add_argument("--worker")
    ap.add_argument("--root", default=os.path.normpath(
        os.path.join(HERE, "..", "..")), help="source tree (for the CRD)")
    ap.add_argument("--projects", type=int, help="default 1000, smoke 40")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--probes", type=int, help="default 200, smoke 10")
    ap.add_argument("--probe-rate", type=float, default=10.0,
                    help="Ready flips per second in the engage rounds")
    ap.add_argument("--mem-projects", type=int,
                    help="default 2000, smoke 200")
    ap.add_argument("--mem-cycles", type=int, default=1,
                    help="engage/disengage cycles of the memory worker; "
                    "the metric is the first, later ones print # lines")
    ap.add_argument("--cpu-window", type=float,
                    help="seconds, default 20, smoke 5")
    ap.add_argument("--only", default="engage,cpu,failover,handoff,mem",
                    help="comma-separated subset of "
                    "engage,cpu,failover,handoff,mem")
    a = ap.parse_args()
    sm = a.smoke
    if a.projects is None:
        a.projects = 40 if sm else 1000
    if a.probes is None:
        a.probes = 10 if sm else 200
    if a.mem_projects is None:
        a.mem_projects = 200 if sm else 2000
    if a.cpu_window is None:
        a.cpu_window = 5.0 if sm else 20.0
    a.only = set(x for x in a.only.split(",") if x)
    bad = a.only - {"engage", "cpu", "failover", "handoff", "mem"}
    if bad or a.repeat < 1 or a.workers < 2 or a.projects < a.workers or \
            not 1 <= a.probes <= a.projects or a.mem_projects < 1 or \
            a.mem_cycles < 1 or a.probe_rate <= 0 or a.cpu_window <= 0:
        print("fleet_bench.py: bad arguments (--only %s; want --repeat >= 1,"
              " --workers >= 2, --projects >= --workers, 1 <= --probes <= "
              "--projects, --mem-projects and --mem-cycles >= 1)"
              % sorted(bad), file=sys.stderr)
        return EXIT_ERROR
    bins = {"root": a.root}
    for k in ("kubesim", "coordinator", "worker"):
        v = getattr(a, k)
        if v is None and a.build:
            v = os.path.join(a.build, {
                "kubesim": "tests/kubesim/kubesim",
                "coordinator": "coordinator/mcfleet-coordinator",
                "worker": "worker/mcfleet-worker"}[k])
        if v is None or not os.access(v, os.X_OK):
            print("fleet_bench.py: --%s (or --build) must name the binary; "
                  "got %r" % (k, v), file=sys.stderr)
            return EXIT_ERROR
        bins[k] = v
    bins["ctl"] = ""

    info("fleet_bench: %s run, %d projects on %d workers, %d probes at "
         "%g/s, %d projects for the memory (%d cycles), cpu window %g s, "
         "repeat %d, only %s" % ("smoke" if sm else "full", a.projects,
                                 a.workers, a.probes, a.probe_rate,
                                 a.mem_projects, a.mem_cycles, a.cpu_window,
                                 a.repeat, ",".join(sorted(a.only))))
    info("knobs: " + KNOBS)
    info("binaries: %s" % ", ".join("%s=%s" % (k, bins[k]) for k in
                                    ("kubesim", "coordinator", "worker")))
    b = Bench(a, bins)
    t0 = time.monotonic()
    try:
        if a.only & {"engage", "cpu", "failover", "handoff"}:
            b.fleet_phase()
        if "mem" in a.only:
            b.mem_phase()
    except (Failure, BenchError) as e:
        print("# error: %s" % e, flush=True)
        return EXIT_ERROR
    info("took %.0f s" % (time.monotonic() - t0))
    if b.insane:
        for x in b.insane:
            print("# error: insane: %s" % x, flush=True)
        return EXIT_ERROR
    return b.code


if __name__ == "__main__":
    sys.exit(main())
