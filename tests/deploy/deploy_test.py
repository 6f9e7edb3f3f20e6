#!/usr/bin/python3
"""Checks of deploy/: the kustomize tree, the rendered manifests, the
Dockerfile, and the CRDs and configuration against kubesim.

Usage: /usr/bin/python3 tests/deploy/deploy_test.py CHECK REPO_ROOT [ARGS]

  render     REPO_ROOT
             `kubectl kustomize` renders the base, every overlay, deploy/crds
             and deploy/project-plane; without a key file the render fails
             and names fleet.key.
  manifests  REPO_ROOT COORDINATOR WORKER
             parses the renders and asserts replicas, probes, requests and
             limits, non-root security contexts, Prometheus annotations,
             Services, PodDisruptionBudgets, config and key mounts, a grace
             period above the worker's drain-timeout, and RBAC equal to what
             the binaries call (tests/deploy/api_calls.py, itself checked
             against the C sources).
  dockerfile REPO_ROOT COORDINATOR WORKER MCFLEETCTL
             multi-stage, FROM Debian 12, a numeric non-root USER, a Release
             CMake build of every source folder, and runtime packages that
             cover what `ldd` reports for each binary (dpkg -S).
  kubesim    REPO_ROOT KUBESIM COORDINATOR WORKER
             kubectl applies deploy/crds to kubesim's core API and to a
             project plane (established, served), and the rendered
             ConfigMap and Secret; then each overlay's coordinator and
             worker run with the rendered config and args: the worker
             joins, a Project is engaged and synced (external mode), and
             SIGTERM ends each within its terminationGracePeriodSeconds.

Every render happens in a temporary copy of deploy/ holding a throwaway key
(deploy/base/fleet.key, git-ignored, is never read).  kubectl runs with a
fresh --cache-dir each time; a missing kubectl fails the check.  Every wait
is bounded (scaled by MCF_TEST_TIMEOUT_SCALE); children are killed by PID.
"""

import atexit
import base64
import ctypes
import glob
import json
import os
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no __pycache__ in the source tree
import api_calls  # noqa: E402

try:
    import yaml  # Debian's python3-yaml (a dependency of python3-kubernetes)
except ImportError:
    print("FAIL: python3-yaml is not installed (apt-get install python3-yaml)")
    sys.exit(1)


def _scale():
    try:
        return max(1, int(os.environ.get("MCF_TEST_TIMEOUT_SCALE", "1") or 1))
    except ValueError:
        return 1


SCALE = _scale()
NS = "mcfleet-system"
OVERLAY_MODES = {"base": "external", "overlays/external": "external",
                 "overlays/internal": "internal"}


class Failure(Exception):
    pass


def expect(cond, what, expected=None, seen=None):
    if not cond:
        msg = what
        if expected is not None or seen is not None:
            msg += "\n  expected: %s\n  seen:     %s" % (expected, seen)
        raise Failure(msg)


def ok(msg):
    print("ok %s" % msg, flush=True)


WORK = tempfile.mkdtemp(prefix="deploy_test.")
atexit.register(lambda: os.environ.get("DEPLOY_KEEP") or
                shutil.rmtree(WORK, ignore_errors=True))


# ---- kubectl and kustomize ------------------------------------------------

def kubectl_path():
    p = shutil.which("kubectl")
    expect(p is not None, "kubectl is not on PATH (the deploy checks need "
           "it; they never skip)")
    return p


_cache_n = [0]


def fresh_cache():
    _cache_n[0] += 1
    return os.path.join(WORK, "kubectl-cache-%d" % _cache_n[0])


def kubectl(args, timeout=60, stdin=None):
    """Runs kubectl with a fresh --cache-dir; returns (rc, out, err)."""
    cmd = [kubectl_path(), "--cache-dir", fresh_cache()] + list(args)
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                           timeout=timeout * SCALE,
                           env=dict(os.environ, KUBECONFIG=os.devnull,
                                    HOME=WORK))
    except subprocess.TimeoutExpired:
        raise Failure("kubectl %s: no answer within %d s"
                      % (" ".join(args), timeout * SCALE))
    return r.returncode, r.stdout, r.stderr


def deploy_copy(root, with_key=True):
    """A copy of ROOT/deploy in WORK (without any real key and without
    deploy/local); a throwaway key in base/fleet.key when with_key."""
    dst = tempfile.mkdtemp(prefix="tree.", dir=WORK)
    shutil.copytree(os.path.join(root, "deploy"),
                    os.path.join(dst, "deploy"),
                    ignore=shutil.ignore_patterns("fleet.key", "local"))
    d = os.path.join(dst, "deploy")
    if with_key:
        with open(os.path.join(d, "base", "fleet.key"), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    return d


def kustomize(dirpath):
    rc, out, err = kubectl(["kustomize", dirpath])
    expect(rc == 0, "kubectl kustomize %s failed (exit %s)" % (dirpath, rc),
           "exit 0", err.strip()[-2000:])
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    expect(docs, "kubectl kustomize %s rendered nothing" % dirpath)
    return docs


def kustomize_targets(deploy):
    """Every kustomization under deploy/ (but deploy/local): relative
    directory names."""
    out = []
    for k in sorted(glob.glob(os.path.join(deploy, "**", "kustomization.yaml"),
                              recursive=True)):
        rel = os.path.relpath(os.path.dirname(k), deploy)
        if rel.split(os.sep)[0] != "local":
            out.append(rel)
    return out


# ---- rendered objects -------------------------------------------------------

def find(docs, kind, name=None, prefix=None):
    out = [d for d in docs if d.get("kind") == kind and
           (name is None or d["metadata"]["name"] == name) and
           (prefix is None or d["metadata"]["name"].startswith(prefix))]
    return out


def one(docs, kind, name=None, prefix=None):
    got = find(docs, kind, name, prefix)
    expect(len(got) == 1, "exactly one %s %s" % (kind, name or prefix or ""),
           1, [d["metadata"]["name"] for d in got])
    return got[0]


def config_of(docs):
    cm = one(docs, "ConfigMap", prefix="mcfleet-config")
    data = cm.get("data") or {}
    out = {}
    for key in ("coordinator.yaml", "worker.yaml"):
        expect(key in data, "ConfigMap %s holds %s"
               % (cm["metadata"]["name"], key), key, sorted(data))
        cfg = yaml.safe_load(data[key])
        expect(isinstance(cfg, dict), "%s is a YAML mapping" % key, "mapping",
               type(cfg).__name__)
        for k, v in cfg.items():
            expect(isinstance(v, (str, int, float, bool)),
                   "%s: %s is a scalar" % (key, k), "scalar", v)
        out[key] = cfg
    return cm, out


def duration_s(text):
    """'500ms', '15s', '2m', '1h', '1m30s' -> seconds."""
    text = str(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    expect(parts and "".join(a + b for a, b in parts) == text,
           "a duration", "like 15s", text)
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(a) * mult[b] for a, b in parts)


def help_flags(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=10 * SCALE)
    expect(r.returncode == 0, "%s --help exits 0" % binary, 0, r.returncode)
    return set(re.findall(r"^\s+--([a-z0-9-]+)", r.stdout, re.M))


def container(workload):
    cs = workload["spec"]["template"]["spec"]["containers"]
    expect(len(cs) == 1, "%s has one container" % workload["metadata"]["name"],
           1, len(cs))
    return cs[0]


def env_field(c, name):
    for e in c.get("env") or []:
        if e["name"] == name:
            return ((e.get("valueFrom") or {}).get("fieldRef") or {}).get(
                "fieldPath")
    return None


def arg_value(c, flag):
    for a in c.get("args") or []:
        if a.startswith("--%s=" % flag):
            return a.split("=", 1)[1]
    return None


def mount_of(workload, path):
    """(volume, mountPath) of the mount holding `path`."""
    c = container(workload)
    vols = {v["name"]: v for v in workload["spec"]["template"]["spec"].get(
        "volumes") or []}
    for m in c.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/") + "/"
        if path.startswith(mp):
            expect(m.get("readOnly") is True, "mount %s is read-only"
                   % m["mountPath"], True, m.get("readOnly"))
            return vols[m["name"]], mp
    raise Failure("%s: no volume mounted at %s"
                  % (workload["metadata"]["name"], path))


# ---- check: render ---------------------------------------------------------

def check_render(root):
    deploy = deploy_copy(root)
    targets = kustomize_targets(deploy)
    for need in ("base", "overlays/external", "overlays/internal", "crds",
                 "project-plane"):
        expect(need in targets, "deploy/%s has a kustomization" % need,
               need, targets)
    for t in targets:
        docs = kustomize(os.path.join(deploy, t))
        for d in docs:
            expect(d.get("apiVersion") and d.get("kind") and
                   (d.get("metadata") or {}).get("name"),
                   "deploy/%s: every object has apiVersion, kind, name" % t,
                   "all three", d)
        ok("kubectl kustomize deploy/%s: %d objects (%s)"
           % (t, len(docs), ", ".join(sorted({d["kind"] for d in docs}))))

    # Without a key the render fails and says which file is missing.
    bare = deploy_copy(root, with_key=False)
    rc, out, err = kubectl(["kustomize", os.path.join(bare, "overlays",
                                                      "external")])
    expect(rc != 0 and "fleet.key" in err,
           "rendering without deploy/base/fleet.key fails and names it",
           "non-zero exit, an error naming fleet.key",
           "exit %s: %s" % (rc, err.strip()[-400:]))
    m = re.search(r"[^'\"]*fleet\.key[^'\"]*", err)
    ok("without deploy/base/fleet.key the render fails: ...%s..."
       % (m.group(0).strip()[-120:] if m else "fleet.key"))

    # The key is git-ignored, so it is never committed by accident.
    r = subprocess.run(["git", "-C", root, "check-ignore", "-q",
                        "deploy/base/fleet.key"], capture_output=True,
                       timeout=30)
    expect(r.returncode == 0, "deploy/base/fleet.key is git-ignored",
           "git check-ignore exit 0", r.returncode)
    ok("deploy/base/fleet.key is git-ignored")


# ---- check: manifests ------------------------------------------------------

def check_security(w):
    name = w["metadata"]["name"]
    pod = w["spec"]["template"]["spec"]
    psc = pod.get("securityContext") or {}
    c = container(w)
    csc = c.get("securityContext") or {}
    expect(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True,
           "%s: runAsNonRoot" % name, True, (psc, csc))
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    expect(isinstance(uid, int) and uid > 0, "%s: numeric runAsUser > 0"
           % name, "> 0", uid)
    for sc in (psc, csc):
        if "runAsUser" in sc:
            expect(sc["runAsUser"] == uid, "%s: one runAsUser" % name, uid,
                   sc["runAsUser"])
    expect(csc.get("readOnlyRootFilesystem") is True,
           "%s: readOnlyRootFilesystem" % name, True, csc)
    expect(csc.get("allowPrivilegeEscalation") is False,
           "%s: allowPrivilegeEscalation false" % name, False, csc)
    caps = csc.get("capabilities") or {}
    expect(caps.get("drop") == ["ALL"] and not caps.get("add"),
           "%s: capabilities drop ALL, add none" % name, ["ALL"], caps)
    sp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {})
    expect(sp.get("type") == "RuntimeDefault", "%s: seccomp RuntimeDefault"
           % name, "RuntimeDefault", sp)
    expect(not pod.get("hostNetwork") and not pod.get("hostPID") and
           not csc.get("privileged"), "%s: no host namespaces, not "
           "privileged" % name)
    return uid


def check_probes_resources(w, http_port):
    name = w["metadata"]["name"]
    c = container(w)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    for probe, path in (("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):
        p = c.get(probe) or {}
        g = p.get("httpGet") or {}
        port = g.get("port")
        port = ports.get(port, port)
        expect(g.get("path") == path and port == http_port,
               "%s: %s GET %s on the status port" % (name, probe, path),
               "%s :%d" % (path, http_port), g)
        expect(p.get("periodSeconds", 10) > 0 and
               p.get("timeoutSeconds", 1) >= 1, "%s: %s timings" % (name,
                                                                   probe))
    res = c.get("resources") or {}
    for kind in ("cpu", "memory"):
        req = (res.get("requests") or {}).get(kind)
        lim = (res.get("limits") or {}).get(kind)
        expect(req is not None and lim is not None,
               "%s: %s request and limit" % (name, kind), "both", res)
        expect(quantity(req) <= quantity(lim), "%s: %s request <= limit"
               % (name, kind), "%s <= %s" % (req, lim), "")
    ann = w["spec"]["template"]["metadata"].get("annotations") or {}
    expect(ann.get("prometheus.io/scrape") == "true" and
           ann.get("prometheus.io/port") == str(http_port) and
           ann.get("prometheus.io/path") == "/metrics",
           "%s: Prometheus scrape annotations on the status port" % name,
           "scrape true, port %d, path /metrics" % http_port, ann)


def quantity(q):
    q = str(q)
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024,
             "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi|Ti)?", q)
    expect(m is not None, "a resource quantity", "like 250m or 1Gi", q)
    return float(m.group(1)) * units[m.group(2) or ""]


def host_port(addr):
    m = re.fullmatch(r"(?:tcp://)?(?:\[[^\]]*\]|[^:]*):(\d+)", str(addr))
    expect(m is not None, "an address with a port", "HOST:PORT", addr)
    return int(m.group(1))


def selects(selector, labels):
    ml = (selector or {}).get("matchLabels") or selector or {}
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def check_config_mounts(docs, w, cm, cfg_key, cfg):
    """--config names the ConfigMap key through its mount; key-file names
    the Secret's key through its mount; returns the decoded key."""
    name = w["metadata"]["name"]
    c = container(w)
    cfg_path = arg_value(c, "config")
    expect(cfg_path is not None, "%s: --config in args" % name)
    vol, mp = mount_of(w, cfg_path)
    expect((vol.get("configMap") or {}).get("name") == cm["metadata"]["name"],
           "%s: the config volume is the generated ConfigMap" % name,
           cm["metadata"]["name"], vol)
    expect(cfg_path[len(mp):] == cfg_key, "%s: --config is %s of the "
           "ConfigMap" % (name, cfg_key), cfg_key, cfg_path)
    kf = cfg.get("key-file")
    expect(kf, "%s: key-file in %s" % (name, cfg_key))
    vol, mp = mount_of(w, kf)
    sname = (vol.get("secret") or {}).get("secretName")
    sec = one(docs, "Secret", sname)
    expect(sname == "mcfleet-fleet-key", "the key Secret keeps its name (no "
           "hash suffix: a rotation updates it in place)",
           "mcfleet-fleet-key", sname)
    item = kf[len(mp):]
    expect(item in (sec.get("data") or {}), "%s: key-file %s is a key of "
           "Secret %s" % (name, kf, sname), item, sorted(sec.get("data") or {}))
    mode = vol["secret"].get("defaultMode", 0o644)
    expect(mode & 0o007 == 0, "%s: the key is not world-readable" % name,
           "no 'other' bits", oct(mode))
    return base64.b64decode(sec["data"][item]).decode()


def check_workloads(docs, mode, coord_bin, worker_bin):
    expect(one(docs, "Namespace", NS), "namespace %s" % NS)
    cluster_kinds = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                     "CustomResourceDefinition"}
    for d in docs:
        if d["kind"] not in cluster_kinds:
            expect(d["metadata"].get("namespace") == NS,
                   "%s %s is in %s" % (d["kind"], d["metadata"]["name"], NS),
                   NS, d["metadata"].get("namespace"))
    cm, cfg = config_of(docs)
    ccfg, wcfg = cfg["coordinator.yaml"], cfg["worker.yaml"]
    for key, c, binary in (("coordinator.yaml", ccfg, coord_bin),
                           ("worker.yaml", wcfg, worker_bin)):
        flags = help_flags(binary)
        unknown = sorted(set(c) - flags)
        expect(not unknown, "%s: every key is a flag of %s"
               % (key, os.path.basename(binary)), "known flags", unknown)
        expect(c.get("namespace", NS) == NS, "%s: namespace" % key, NS,
               c.get("namespace"))
        expect("kubeconfig" not in c, "%s: no kubeconfig (in-cluster)" % key)
    expect(ccfg.get("mode", "external") == mode, "coordinator mode", mode,
           ccfg.get("mode"))
    if mode == "internal":
        expect("{name}" in str(ccfg.get("internal-endpoint-template", "")),
               "internal-endpoint-template holds {name}", "{name}",
               ccfg.get("internal-endpoint-template"))
    expect(wcfg.get("coordinator-lease", "mcfleet-coordinator") ==
           ccfg.get("lease-name", "mcfleet-coordinator"),
           "the workers follow the coordinators' Lease",
           ccfg.get("lease-name"), wcfg.get("coordinator-lease"))
    expect(ccfg.get("key-file") == wcfg.get("key-file"),
           "one key file for both", ccfg.get("key-file"), wcfg.get("key-file"))

    # -- the coordinator Deployment
    dep = one(docs, "Deployment", "mcfleet-coordinator")
    expect(dep["spec"].get("replicas") == 2, "coordinator replicas", 2,
           dep["spec"].get("replicas"))
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    expect(selects(dep["spec"]["selector"], pod_labels),
           "coordinator selector matches its pods")
    ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    expect(ru.get("maxUnavailable") == 0, "coordinator rollout keeps both "
           "up (maxUnavailable 0)", 0, ru)
    c = container(dep)
    chttp = host_port(ccfg.get("http", "0.0.0.0:8080"))
    clisten = host_port(ccfg.get("listen", "tcp://0.0.0.0:7400"))
    ports = {p["containerPort"] for p in c.get("ports") or []}
    expect({chttp, clisten} <= ports, "coordinator container ports",
           {chttp, clisten}, ports)
    expect(arg_value(c, "advertise-address") == "$(POD_IP)" and
           env_field(c, "POD_IP") == "status.podIP",
           "coordinator advertises its pod IP (downward API)",
           "--advertise-address=$(POD_IP), POD_IP from status.podIP",
           (c.get("args"), c.get("env")))
    expect(arg_value(c, "name") is None, "coordinator identity stays "
           "HOSTNAME_RANDOM (new at every start)")
    check_probes_resources(dep, chttp)
    uid_c = check_security(dep)
    check_config_mounts(docs, dep, cm, "coordinator.yaml", ccfg)
    grace_c = dep["spec"]["template"]["spec"].get(
        "terminationGracePeriodSeconds", 30)
    expect(grace_c >= 10, "coordinator grace period", ">= 10 s", grace_c)

    # -- the worker StatefulSet
    sts = one(docs, "StatefulSet", "mcfleet-worker")
    expect(sts["spec"].get("replicas", 1) >= 1, "worker replicas", ">= 1",
           sts["spec"].get("replicas"))
    expect(sts["spec"].get("podManagementPolicy") == "Parallel",
           "podManagementPolicy", "Parallel",
           sts["spec"].get("podManagementPolicy"))
    wlabels = sts["spec"]["template"]["metadata"]["labels"]
    expect(selects(sts["spec"]["selector"], wlabels),
           "worker selector matches its pods")
    hs = one(docs, "Service", sts["spec"].get("serviceName"))
    expect(hs["spec"].get("clusterIP") == "None" and
           selects(hs["spec"].get("selector"), wlabels),
           "the StatefulSet's serviceName is a headless Service of the "
           "workers", "clusterIP None", hs["spec"])
    c = container(sts)
    expect(arg_value(c, "name") == "$(POD_NAME)" and
           env_field(c, "POD_NAME") == "metadata.name",
           "worker --name from the pod name (stable shard identity)",
           "--name=$(POD_NAME), POD_NAME from metadata.name",
           (c.get("args"), c.get("env")))
    expect(env_field(c, "POD_IP") == "status.podIP",
           "worker POD_IP (its status URL on the Lease)")
    whttp = host_port(wcfg.get("http", "0.0.0.0:8080"))
    check_probes_resources(sts, whttp)
    uid_w = check_security(sts)
    check_config_mounts(docs, sts, cm, "worker.yaml", wcfg)
    drain = duration_s(wcfg.get("drain-timeout", "20s"))
    lease = duration_s(wcfg.get("lease-duration", "3s"))
    grace_w = sts["spec"]["template"]["spec"].get(
        "terminationGracePeriodSeconds", 30)
    # The hand-off: up to drain-timeout, then disengaging what is left and
    # releasing the Lease (well within a lease duration); 10 s of margin.
    expect(grace_w >= drain + lease + 10,
           "worker terminationGracePeriodSeconds above the hand-off",
           ">= drain-timeout %gs + lease %gs + 10s" % (drain, lease), grace_w)
    expect(container(dep)["image"] == c["image"] and
           not c["image"].endswith(":latest") and ":" in c["image"],
           "one pinned image for both", "same, tagged", (container(dep)["image"],
                                                         c["image"]))

    # -- Services and disruption budgets
    svc = one(docs, "Service", "mcfleet-coordinator")
    expect(selects(svc["spec"].get("selector"), pod_labels) and
           any(p.get("targetPort") in (chttp, "http") for p in
               svc["spec"]["ports"]), "the coordinator status Service",
           "selects coordinators, targets :%d" % chttp, svc["spec"])
    for w, labels, replicas in ((dep, pod_labels, 2),
                                (sts, wlabels, sts["spec"].get("replicas"))):
        pdbs = [p for p in find(docs, "PodDisruptionBudget")
                if selects(p["spec"]["selector"], labels)]
        expect(len(pdbs) == 1, "one PodDisruptionBudget for %s"
               % w["metadata"]["name"], 1, len(pdbs))
        s = pdbs[0]["spec"]
        expect(("minAvailable" in s and 0 < s["minAvailable"] < replicas) or
               ("maxUnavailable" in s and s["maxUnavailable"] >= 1),
               "%s: the budget lets a drain proceed" % w["metadata"]["name"],
               "minAvailable < replicas or maxUnavailable >= 1", s)
    return {"coordinator": dep, "worker": sts, "config": cfg,
            "uids": (uid_c, uid_w), "grace": (grace_c, grace_w)}


# -- RBAC: the table against the source, then against the manifests --------

def strip_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", src, flags=re.S)


CALL_RE = re.compile(r"\b(mcf_kc_(?:get|list|create_object|update_status|"
                     r"update|patch|delete|request))\s*\(|"
                     r"\b(mcf_inf_config)\s+\w+\s*=")
RES_RES = [
    # {group, "vN", "resource", ...}: mcf_kc_ref and mcf_ctrl_gvr literals
    re.compile(r'\{\s*(?:NULL|"[a-z0-9.]*")\s*,\s*"v\d[a-z0-9]*"\s*,\s*'
               r'"([a-z]+)"'),
    # .resource = "leases"
    re.compile(r'\.resource\s*=\s*"([a-z]+)"'),
]
# Functions that return a resource name (the provider's mode switch).
RES_FUNC_RE = re.compile(r"\n(mcf_\w+_resource)\s*\([^)]*\)\s*\{(.*?)\n\}",
                         re.S)


def scan_source(root):
    """{file: (set of client calls, set of resource names)} for every .c of
    common/, coordinator/, worker/ (kclient.c defines the calls)."""
    out = {}
    for d in ("common", "coordinator", "worker"):
        for path in sorted(glob.glob(os.path.join(root, d, "*.c"))):
            rel = os.path.relpath(path, root)
            if rel == "common/kclient.c":
                continue
            with open(path, encoding="utf-8") as f:
                src = strip_comments(f.read())
            calls = {m.group(1) or m.group(2) for m in CALL_RE.finditer(src)}
            res = set()
            for r in RES_RES:
                res |= set(r.findall(src))
            for m in RES_FUNC_RE.finditer("\n" + src):
                res |= set(re.findall(r'"([a-z]+)"', m.group(2)))
            if calls or res:
                out[rel] = (calls, res)
    return out


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return strip_comments(f.read())


def check_table_against_source(root):
    scanned = scan_source(root)
    rows = api_calls.ROWS
    cited_calls, cited_res = {}, {}
    for r in rows:
        base = r["resource"].split("/")[0]
        files = set()
        for f, fn in r.get("calls", []):
            expect(fn in api_calls.CLIENT_VERBS, "api_calls: %s is a client "
                   "function" % fn, sorted(api_calls.CLIENT_VERBS), fn)
            expect(f in scanned and fn in scanned[f][0],
                   "api_calls row %s %s %s: %s calls %s"
                   % (r["binary"], r["resource"], r["verbs"], f, fn),
                   fn, sorted(scanned.get(f, (set(), set()))[0]))
            if fn != "mcf_kc_request":
                want = set(api_calls.CLIENT_VERBS[fn])
                expect(want <= set(r["verbs"]) or
                       (fn == "mcf_kc_get" and "get" in r["verbs"]),
                       "api_calls row %s %s: verbs cover %s"
                       % (r["binary"], r["resource"], fn), want, r["verbs"])
            expect(fn != "mcf_kc_update_status" or
                   r["resource"].endswith("/status"),
                   "mcf_kc_update_status is an update of RESOURCE/status",
                   "*/status", r["resource"])
            cited_calls.setdefault(f, set()).add(fn)
            files.add(f)
        for f, rx in r.get("evidence", []):
            expect(re.search(rx, read(root, f)) is not None,
                   "api_calls row %s %s: evidence /%s/ in %s"
                   % (r["binary"], r["resource"], rx, f))
            files.add(f)
        expect(files, "api_calls row %s %s cites the source"
               % (r["binary"], r["resource"]))
        for f in files:
            cited_res.setdefault(f, set()).add(base)
            if not f.startswith("common/"):
                expect(f.startswith(api_calls.BINARY_DIRS[r["binary"]]),
                       "api_calls row %s %s: %s belongs to mcfleet-%s"
                       % (r["binary"], r["resource"], f, r["binary"]))
        expect(any(base in scanned.get(f, (set(), set()))[1] for f in files),
               "api_calls row %s %s: the resource is named in a cited file"
               % (r["binary"], r["resource"]), base,
               {f: sorted(scanned.get(f, (set(), set()))[1]) for f in files})

    # Reverse: every call and every resource name in the source is covered.
    for f, (calls, res) in sorted(scanned.items()):
        missing = calls - cited_calls.get(f, set())
        expect(not missing, "%s calls %s, which no row of "
               "tests/deploy/api_calls.py covers (add the rights it needs)"
               % (f, sorted(missing)))
        missing = res - cited_res.get(f, set())
        expect(not missing, "%s names resource(s) %s that no row of "
               "tests/deploy/api_calls.py covers" % (f, sorted(missing)))
        if f.startswith("common/") and calls:
            expect(f in api_calls.COMMON_ENTRY, "%s calls the API: add its "
                   "entry point to COMMON_ENTRY in api_calls.py" % f)

    # Which binaries use each common/ module.
    for f, entry in api_calls.COMMON_ENTRY.items():
        users = set()
        for b, d in api_calls.BINARY_DIRS.items():
            for path in glob.glob(os.path.join(root, d, "*.c")):
                with open(path, encoding="utf-8") as fh:
                    if re.search(r"\b%s\s*\(" % entry,
                                 strip_comments(fh.read())):
                        users.add(b)
        rows_for = {r["binary"] for r in api_calls.ROWS
                    if any(c[0] == f for c in r.get("calls", []))}
        expect(users == rows_for, "%s (entry %s) is used by %s; api_calls "
               "rows cite it for" % (f, entry, sorted(users)), sorted(users),
               sorted(rows_for))
    ok("api_calls.py matches the source: %d rows; calls in %s"
       % (len(rows), ", ".join("%s (%s)" % (f, ", ".join(sorted(c)))
                               for f, (c, _) in sorted(scanned.items()) if c)))


def expand_rules(rules, where):
    out = set()
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            expect("*" not in (rule.get(field) or []),
                   "%s: no wildcard %s" % (where, field), "no *", rule)
        expect(not rule.get("nonResourceURLs"), "%s: no nonResourceURLs"
               % where, None, rule)
        names = rule.get("resourceNames") or ["*"]
        for g in rule.get("apiGroups") or []:
            for res in rule.get("resources") or []:
                for v in rule.get("verbs") or []:
                    for n in names:
                        out.add((g, res, v, n))
    return out


def granted(docs, sa, kind_binding, kind_role):
    out = set()
    for b in find(docs, kind_binding):
        if not any(s.get("kind") == "ServiceAccount" and
                   s.get("name") == sa and s.get("namespace") == NS
                   for s in b.get("subjects") or []):
            continue
        ref = b["roleRef"]
        expect(ref["kind"] == kind_role, "%s %s binds a %s"
               % (kind_binding, b["metadata"]["name"], kind_role),
               kind_role, ref["kind"])
        role = one(docs, kind_role, ref["name"])
        out |= expand_rules(role.get("rules") or [], "%s %s"
                            % (kind_role, ref["name"]))
    return out


def required(binary, plane, mode, cfg):
    out = set()
    for r in api_calls.ROWS:
        if r["binary"] != binary or r["plane"] != plane:
            continue
        if r.get("mode") not in (None, mode):
            continue
        names = ["*"]
        if r.get("names"):
            cfile, key, default = r["names"]
            names = [str(cfg[cfile].get(key, default))]
        for v in r["verbs"]:
            for n in names:
                out.add((r["group"], r["resource"], v, n))
    return out


def fmt_rules(s):
    return sorted("%s/%s %s%s" % (g or "core", r, v, "" if n == "*" else
                                  " [%s]" % n) for g, r, v, n in s)


def check_rbac(docs, mode, info, plane_docs):
    for binary, w in (("coordinator", info["coordinator"]),
                      ("worker", info["worker"])):
        pod = w["spec"]["template"]["spec"]
        sa = pod.get("serviceAccountName")
        expect(sa == "mcfleet-" + binary, "%s runs as its own service "
               "account" % binary, "mcfleet-" + binary, sa)
        one(docs, "ServiceAccount", sa)
        expect(pod.get("automountServiceAccountToken", True) is True,
               "%s mounts its token (in-cluster API access)" % binary)
        planes = (("core-namespace", docs, "RoleBinding", "Role"),
                  ("cluster", docs, "ClusterRoleBinding", "ClusterRole"),
                  ("project", plane_docs, "ClusterRoleBinding", "ClusterRole"))
        for plane, pd, kb, kr in planes:
            want = required(binary, plane, mode, info["config"])
            have = granted(pd, sa, kb, kr)
            expect(want <= have, "%s (%s): every call the binary makes is "
                   "allowed" % (binary, plane), fmt_rules(want),
                   "missing %s" % fmt_rules(want - have))
            expect(have <= want, "%s (%s): least privilege, nothing the "
                   "binary does not call" % (binary, plane), fmt_rules(want),
                   "extra %s" % fmt_rules(have - want))
            if want:
                ok("%s RBAC (%s, %s mode) = the calls: %s"
                   % (binary, plane, mode, "; ".join(fmt_rules(want))))
    # Roles live in the fleet's namespace; no binding reaches other subjects.
    for b in find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding"):
        for s in b.get("subjects") or []:
            expect(s.get("kind") == "ServiceAccount" and
                   s.get("name", "").startswith("mcfleet-") and
                   s.get("namespace") == NS,
                   "%s %s binds only mcfleet service accounts"
                   % (b["kind"], b["metadata"]["name"]), "mcfleet-* in " + NS,
                   s)


def check_manifests(root, coord_bin, worker_bin):
    check_table_against_source(root)
    deploy = deploy_copy(root)
    plane_docs = kustomize(os.path.join(deploy, "project-plane"))
    crd = one(plane_docs, "CustomResourceDefinition",
              "myresources.example.mcfleet.io")
    expect(crd, "project-plane carries the MyResource CRD")
    base_cfg = None
    for target, mode in OVERLAY_MODES.items():
        docs = kustomize(os.path.join(deploy, target))
        expect(not find(docs, "CustomResourceDefinition"),
               "deploy/%s installs no CRD in the core cluster (MyResources "
               "live in the project planes)" % target)
        info = check_workloads(docs, mode, coord_bin, worker_bin)
        check_rbac(docs, mode, info, plane_docs)
        if target == "base":
            base_cfg = info["config"]
        else:
            # An overlay changes only what its mode needs.
            for key in ("coordinator.yaml", "worker.yaml"):
                a = {k: v for k, v in base_cfg[key].items()
                     if k not in ("mode", "internal-endpoint-template")}
                b = {k: v for k, v in info["config"][key].items()
                     if k not in ("mode", "internal-endpoint-template")}
                expect(a == b, "deploy/%s %s differs from the base's only in "
                       "mode and internal-endpoint-template" % (target, key),
                       a, b)
        ok("deploy/%s (%s mode): coordinator x2, workers x%d Parallel, "
           "probes, limits, uid %d/%d non-root read-only, grace %ds/%ds "
           "(drain-timeout %s), PDBs, config and key mounts"
           % (target, mode, info["worker"]["spec"]["replicas"],
              info["uids"][0], info["uids"][1], info["grace"][0],
              info["grace"][1],
              info["config"]["worker.yaml"].get("drain-timeout", "20s")))


# ---- check: Dockerfile -----------------------------------------------------

def dockerfile_instructions(path):
    """[(INSTRUCTION, text)] with continuations joined, comments dropped."""
    out, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (s.strip().startswith("#") or not s.strip()):
                continue
            if cur and s.strip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            ins, _, rest = cur.strip().partition(" ")
            out.append((ins.upper(), rest.strip()))
            cur = ""
    expect(not cur, "Dockerfile ends inside a continuation")
    return out


def apt_packages(run_text):
    pkgs = []
    for m in re.finditer(r"apt-get\s+install\s+([^&;|]*)", run_text):
        for tok in m.group(1).split():
            if not tok.startswith("-"):
                pkgs.append(tok)
    return pkgs


_owner_cache = {}      # path -> package, or None: dpkg -S knows no owner


def _candidates(path):
    """The path, its target, and both sides of the /usr merge (dpkg knows
    a library under whichever its package installed it)."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        if p.startswith("/usr/lib/"):
            cands.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            cands.append("/usr" + p)
    return cands


def dpkg_prime(paths):
    """One `dpkg -S` for many paths (each call reads every file list)."""
    todo = sorted({c for p in paths for c in _candidates(p)} -
                  set(_owner_cache))
    if not todo:
        return
    r = subprocess.run(["dpkg", "-S"] + todo, capture_output=True, text=True,
                       timeout=120)
    for p in todo:
        _owner_cache[p] = None          # asked; no package owns it
    for line in r.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        if "," not in pkgs:
            _owner_cache[path] = pkgs.split(":")[0].strip()


def dpkg_owner(path):
    dpkg_prime([path])
    for c in _candidates(path):
        if _owner_cache.get(c):
            return _owner_cache[c]
    raise Failure("dpkg -S: no package owns %s" % path)


_deps_cache = {}


def pkg_depends(pkg):
    """Depends and Pre-Depends of an installed package, every alternative
    counted (one dpkg-query for all packages, read once)."""
    if not _deps_cache:
        r = subprocess.run(["dpkg-query", "-W", "-f",
                            "${Package}\t${Depends}, ${Pre-Depends}\n"],
                           capture_output=True, text=True, timeout=120)
        expect(r.returncode == 0, "dpkg-query -W", 0, r.stderr[-300:])
        for line in r.stdout.splitlines():
            name, _, deps = line.partition("\t")
            out = _deps_cache.setdefault(name, set())
            for alt in deps.split(","):
                for d in alt.split("|"):
                    d = re.sub(r"\(.*?\)|:any|:\w+$", "", d).strip()
                    if d:
                        out.add(d)
    return _deps_cache.get(pkg, set())


def closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(pkg_depends(p) - seen)
    return seen


def essential_set():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"],
                       capture_output=True, text=True, timeout=60)
    expect(r.returncode == 0, "dpkg-query works", 0, r.stderr)
    ess = [l.split()[0] for l in r.stdout.splitlines()
           if l.endswith(" yes")]
    expect(ess, "dpkg knows the Essential packages")
    return closure(ess)


def check_dockerfile(root, binaries):
    path = os.path.join(root, "deploy", "Dockerfile")
    ins = dockerfile_instructions(path)
    stages = []
    for i, t in ins:
        if i == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?",
                             t, re.I)
            expect(m is not None, "FROM line", "IMAGE [AS NAME]", t)
            stages.append({"image": m.group(1), "name": m.group(2),
                           "ins": []})
        else:
            expect(stages or i in ("ARG",), "instruction before FROM", "", i)
            if stages:
                stages[-1]["ins"].append((i, t))
    expect(len(stages) >= 2, "a multi-stage build", ">= 2 stages",
           len(stages))
    for s in stages:
        expect(re.fullmatch(r"debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?"
                            r"|debian:12(\.\d+)?(-slim)?(@sha256:[0-9a-f]{64})?",
                            s["image"]) is not None,
               "every stage FROM Debian 12", "debian:bookworm[-slim]",
               s["image"])
    build, final = stages[0], stages[-1]
    expect(build["name"], "the build stage is named")
    # A numeric non-root USER in the final stage.
    users = [t for i, t in final["ins"] if i == "USER"]
    expect(users, "the final stage sets USER")
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    expect(m is not None and int(m.group(1)) != 0 and
           (m.group(2) is None or int(m.group(2)) != 0),
           "USER is numeric and not root", "UID[:GID] > 0", users[-1])
    # The manifests run as that uid.
    ok("Dockerfile: %d stages FROM %s, USER %s"
       % (len(stages), ", ".join(s["image"] for s in stages), users[-1]))
    uid = int(m.group(1))
    deploy = deploy_copy(root)
    docs = kustomize(os.path.join(deploy, "base"))
    for kind, name in (("Deployment", "mcfleet-coordinator"),
                       ("StatefulSet", "mcfleet-worker")):
        w = one(docs, kind, name)
        c = container(w)
        sc = c.get("securityContext") or {}
        psc = w["spec"]["template"]["spec"].get("securityContext") or {}
        expect(sc.get("runAsUser", psc.get("runAsUser")) == uid,
               "%s runs as the image's USER" % name, uid,
               sc.get("runAsUser", psc.get("runAsUser")))
        exe = c["command"][0]
        copies = " ".join(t for i, t in final["ins"] if i == "COPY")
        expect(os.path.basename(exe) in copies and
               any(t.rstrip("/").endswith(os.path.dirname(exe))
                   for i, t in final["ins"] if i == "COPY"),
               "%s's command %s is copied into the image" % (name, exe))

    # Build stage: Release, every source folder of the top CMakeLists.
    brun = " ".join(t for i, t in build["ins"] if i == "RUN")
    expect("-DCMAKE_BUILD_TYPE=Release" in brun and
           "MCF_SANITIZER" not in brun, "CMake Release build, no sanitizers",
           "-DCMAKE_BUILD_TYPE=Release", brun[:300])
    sanitized = os.environ.get("MCF_SANITIZED", "OFF").upper() in (
        "ON", "1", "TRUE", "YES")
    copied = " ".join(t for i, t in build["ins"] if i == "COPY")
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        subdirs = re.findall(r"add_subdirectory\((\w+)\)", f.read())
    for d in subdirs + ["CMakeLists.txt"]:
        expect(re.search(r"(^|\s)%s/?(\s|$)" % re.escape(d), copied),
               "the build stage copies %s" % d, d, copied)
    for b in binaries:
        bn = os.path.basename(b)
        expect(bn in brun, "the build stage builds %s" % bn)
        expect(any(i == "COPY" and t.startswith("--from=%s " % build["name"])
                   and bn in t for i, t in final["ins"]),
               "the final stage copies %s from %s" % (bn, build["name"]))
    for s in stages:
        for i, t in s["ins"]:
            if i == "RUN" and "apt-get install" in t:
                expect("--no-install-recommends" in t and
                       "rm -rf /var/lib/apt/lists" in t and
                       "apt-get update" in t,
                       "apt-get: update, --no-install-recommends and "
                       "cleanup in one RUN", "all three", t[:200])
    build_pkgs = {p for i, t in build["ins"] if i == "RUN"
                  for p in apt_packages(t)}
    run_pkgs = {p for i, t in final["ins"] if i == "RUN"
                for p in apt_packages(t)}
    expect(run_pkgs, "the runtime stage installs its libraries")
    expect("ca-certificates" in run_pkgs, "the runtime stage has the CA "
           "bundle (HTTPS to the API servers)")
    dev_only = {p for p in run_pkgs if p.endswith("-dev")} | \
               ({"build-essential", "cmake", "gcc"} & run_pkgs)
    expect(not dev_only, "no build tools in the runtime stage", "none",
           sorted(dev_only))

    base = essential_set()
    have = closure(run_pkgs | base)
    build_have = closure(build_pkgs)
    for b in binaries:
        r = subprocess.run(["ldd", b], capture_output=True, text=True,
                           timeout=30)
        expect(r.returncode == 0, "ldd %s" % b, 0, r.stderr)
        libs = {}
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line) or \
                re.match(r"\s*(/\S+)\s+\(", line)
            if m:
                p = m.group(m.lastindex)
                libs[os.path.basename(p)] = p
            elif "not found" in line:
                raise Failure("ldd %s: %s" % (b, line.strip()))
        r = subprocess.run(["objdump", "-p", b], capture_output=True,
                           text=True, timeout=30)
        expect(r.returncode == 0, "objdump -p %s" % b, 0, r.stderr)
        needed_skip = set()
        needed = re.findall(r"NEEDED\s+(\S+)", r.stdout)
        owners = {}
        dpkg_prime(libs.values())
        pkgs = {so: dpkg_owner(p) for so, p in libs.items()}
        san = set()
        if sanitized:
            # The sanitizer runtimes of this test build and what they pull
            # in (libstdc++); the image's Release build (checked above) has
            # none of them.
            san = closure({p for p in pkgs.values()
                           if re.fullmatch(r"lib(a|ub|t|l)san\d+", p)}) - have
        for so, pkg in sorted(pkgs.items()):
            if pkg in san:
                needed_skip.add(so)
                continue
            owners[so] = pkg
            expect(pkg in have, "%s: %s (%s) is in the runtime image"
                   % (os.path.basename(b), so, pkg),
                   "a runtime-stage package, a dependency of one, or the "
                   "Essential set", sorted(run_pkgs))
        for so in needed:
            if so in needed_skip:
                continue
            expect(so in owners, "ldd %s resolves %s" % (b, so))
            pkg = owners[so]
            expect(pkg in run_pkgs or pkg in base,
                   "%s links %s directly: its package %s is installed "
                   "explicitly" % (os.path.basename(b), so, pkg),
                   sorted(run_pkgs), pkg)
            if pkg in base:
                continue
            # The link-time name: a *.so in the same folder that resolves
            # to the same file (libyaml.so -> libyaml-0.so.2.0.9).
            real = os.path.realpath(libs[so])
            devs = [d for d in glob.glob(os.path.join(os.path.dirname(real),
                                                      "*.so"))
                    if os.path.realpath(d) == real]
            expect(devs, "the -dev link of %s (%s) is installed here"
                   % (so, real), "a *.so link to it", "none")
            devpkg = dpkg_owner(devs[0])
            dev = devs[0]
            expect(devpkg in build_have, "the build stage installs %s (%s, "
                   "to link %s)" % (devpkg, dev, so), devpkg,
                   sorted(build_pkgs))
        ok("%s: ldd %d libraries -> %s; all in the runtime stage"
           % (os.path.basename(b), len(libs),
              ", ".join(sorted(set(owners.values())))))


# ---- check: kubesim ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CHILDREN = []


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG


def _kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_children)


class Proc:
    def __init__(self, label, args, roles, env=None):
        self.label = label
        self.errpath = os.path.join(WORK, label + ".stderr")
        errf = open(self.errpath, "ab")
        self.p = subprocess.Popen([str(a) for a in args],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=errf,
                                  env=env, preexec_fn=_die_with_parent)
        errf.close()
        CHILDREN.append(self.p)
        self.urls = {}
        deadline = time.monotonic() + 20 * SCALE
        buf = b""
        while any(r not in self.urls for r in roles):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s: no `listening on` line for %s within "
                              "%d s\n%s" % (label, roles, 20 * SCALE,
                                            self.tail()))
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if not r:
                if self.p.poll() is not None:
                    raise Failure("%s exited %s before listening\n%s"
                                  % (label, self.p.returncode, self.tail()))
                continue
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                raise Failure("%s closed stdout (exit %s)\n%s"
                              % (label, self.p.poll(), self.tail()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = re.fullmatch(r"listening on (\S+)(?: \((\w+)\))?",
                                 line.decode("utf-8", "replace"))
                expect(m is not None, "%s stdout" % label,
                       "listening on URL (ROLE)", line)
                self.urls[m.group(2) or ""] = m.group(1)

    def tail(self, n=25):
        try:
            with open(self.errpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        return "--- %s stderr ---\n%s" % (self.label, "\n".join(lines[-n:]))

    def terminate(self, bound):
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=10)
            raise Failure("%s did not exit within %.0f s of SIGTERM\n%s"
                          % (self.label, bound, self.tail()))
        return rc, time.monotonic() - t0


def http_json(method, url, body=None, ctype="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            raw, st = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, st = e.read(), e.code
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)
    try:
        return st, json.loads(raw or b"null")
    except ValueError:
        return st, raw.decode("utf-8", "replace")


def wait_until(what, fn, timeout):
    deadline = time.monotonic() + timeout * SCALE
    t0 = time.monotonic()
    while True:
        done, detail = fn()
        if done:
            return time.monotonic() - t0
        if time.monotonic() >= deadline:
            raise Failure("%s: not within %d s\n  seen: %s"
                          % (what, timeout * SCALE, detail))
        time.sleep(0.2)


def container_argv(w, binary, env, cfg_dir):
    """The container's command line as the kubelet would run it: $(VAR)
    from `env`, the config mount remapped to `cfg_dir`."""
    c = container(w)
    args = []
    for a in c.get("args") or []:
        a = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a)
        a = a.replace("/etc/mcfleet/config/", cfg_dir + "/")
        args.append(a)
    for a in args:
        expect("$(" not in a, "every $(VAR) of %s is defined"
               % w["metadata"]["name"], "", a)
    return [binary] + args


def apply_crds(kc_args, deploy, where):
    rc, out, err = kubectl(kc_args + ["apply", "-k",
                                      os.path.join(deploy, "crds")])
    expect(rc == 0 and "myresources.example.mcfleet.io" in out,
           "kubectl apply -k deploy/crds (%s)" % where, "created",
           (rc, out.strip(), err.strip()[-600:]))
    rc, out, err = kubectl(kc_args + [
        "wait", "--for", "condition=established",
        "crd/myresources.example.mcfleet.io",
        "--timeout=%ds" % (20 * SCALE)], timeout=30)
    expect(rc == 0, "the CRD is established (%s)" % where, "condition met",
           (rc, out.strip(), err.strip()[-400:]))
    rc, out, err = kubectl(kc_args + ["api-resources", "--api-group",
                                      "example.mcfleet.io", "-o", "name"])
    expect(rc == 0 and "myresources.example.mcfleet.io" in out,
           "myresources is discoverable (%s)" % where,
           "myresources.example.mcfleet.io", (rc, out, err[-300:]))
    rc, out, err = kubectl(kc_args + ["get", "myresources", "-A"])
    expect(rc == 0, "kubectl get myresources is served (%s)" % where, 0,
           (rc, err.strip()[-300:]))
    ok("deploy/crds applied with kubectl to %s: established, discovered, "
       "served: %s" % (where, out.strip().splitlines()[0] if out.strip()
                       else "(no MyResources)"))


def check_kubesim(root, kubesim, coord_bin, worker_bin):
    deploy = deploy_copy(root)
    kc = os.path.join(WORK, "kubesim.kubeconfig")
    sim = Proc("kubesim", [kubesim, "--listen", "127.0.0.1:0",
                           "--kubeconfig-out", kc, "--project-ready-after",
                           "300ms"], roles=("",))
    url = sim.urls[""]
    st, b = http_json("POST", url + "/api/v1/namespaces",
                      {"metadata": {"name": NS}})
    expect(st == 201, "create namespace %s" % NS, 201, (st, b))

    # The CRDs: into the core API, and into a project's control plane (where
    # MyResources live in a fleet).
    apply_crds(["--kubeconfig", kc], deploy, "kubesim's core API")
    proj_api = "/apis/resourcemanager.miloapis.com/v1alpha1"
    st, b = http_json("POST", url + proj_api + "/projects", {
        "apiVersion": "resourcemanager.miloapis.com/v1alpha1",
        "kind": "Project", "metadata": {"name": "p1"},
        "spec": {"ownerRef": {"kind": "Organization", "name": "org"}}})
    expect(st == 201, "create Project p1", 201, (st, b))
    plane = url + proj_api + "/projects/p1/control-plane"
    apply_crds(["--server", plane], deploy, "project p1's control plane")
    rc, out, err = kubectl(["--server", plane, "apply", "-n", "default", "-f",
                            os.path.join(root, "deploy", "examples",
                                         "myresource.yaml")])
    expect(rc == 0, "kubectl apply deploy/examples/myresource.yaml in p1", 0,
           (rc, out, err[-300:]))

    for target, mode in (("overlays/external", "external"),
                         ("overlays/internal", "internal")):
        docs = kustomize(os.path.join(deploy, target))
        # The generated ConfigMap and Secret as an API server takes them.
        gen = [d for d in docs if d["kind"] in ("ConfigMap", "Secret")]
        # kustomize wraps long base64 values at 70 columns; the API server
        # (Go's base64) skips the newlines, kubesim refuses them: unwrap.
        for d in gen:
            if d["kind"] == "Secret":
                d["data"] = {k: "".join(v.split())
                             for k, v in d["data"].items()}
        gpath = os.path.join(WORK, "generated-%s.yaml" % mode)
        with open(gpath, "w") as f:
            yaml.safe_dump_all(gen, f)
        rc, out, err = kubectl(["--kubeconfig", kc, "apply", "-f", gpath])
        expect(rc == 0, "kubectl apply the generated ConfigMap and Secret "
               "(%s)" % target, 0, (rc, out, err[-400:]))
        ok("deploy/%s: the generated ConfigMap and Secret apply: %s"
           % (target, "; ".join(out.strip().splitlines())))
        run_fleet(docs, mode, kc, url, coord_bin, worker_bin)
    sim.terminate(10 * SCALE)


def run_fleet(docs, mode, kc, url, coord_bin, worker_bin):
    """Runs the coordinator and a worker as the manifests run them (rendered
    config files and args), with the in-cluster parts replaced: kubesim's
    kubeconfig, loopback listeners, the key file at a local path."""
    cm, cfg = config_of(docs)
    cfg_dir = os.path.join(WORK, "config-" + mode)
    os.makedirs(cfg_dir, exist_ok=True)
    for k, v in cm["data"].items():
        with open(os.path.join(cfg_dir, k), "w") as f:
            f.write(v)
    sec = one(docs, "Secret", "mcfleet-fleet-key")
    keyfile = os.path.join(WORK, "key-" + mode)
    with open(keyfile, "wb") as f:
        f.write(base64.b64decode(sec["data"]["key"]))
    os.chmod(keyfile, 0o600)
    local = ["--kubeconfig", kc, "--http", "127.0.0.1:0",
             "--key-file", keyfile]
    dep = one(docs, "Deployment", "mcfleet-coordinator")
    sts = one(docs, "StatefulSet", "mcfleet-worker")
    penv = {"POD_IP": "127.0.0.1", "POD_NAME": "mcfleet-worker-0"}
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(penv)

    # Every value of the config as rendered passes the binaries' usage
    # checks (they exit 2 naming a flag otherwise): run them with only an
    # unreadable kubeconfig changed, and expect the run-time failure (1)
    # that comes after those checks.
    for w, binary in ((dep, coord_bin), (sts, worker_bin)):
        argv = container_argv(w, binary, penv, cfg_dir) + [
            "--kubeconfig", os.path.join(WORK, "no-such-kubeconfig"),
            "--key-file", keyfile]
        r = subprocess.run(argv, capture_output=True, text=True, env=env,
                           timeout=30 * SCALE)
        expect(r.returncode == 1 and "kubeconfig" in r.stderr,
               "%s with the rendered %s config passes its usage checks"
               % (os.path.basename(binary), mode),
               "exit 1 at the kubeconfig", "exit %s: %s"
               % (r.returncode, r.stderr.strip()[-300:]))

    cargv = container_argv(dep, coord_bin, penv, cfg_dir) + local + [
        "--listen", "tcp://127.0.0.1:0"]
    if mode == "internal":
        # The project planes are kubesim's, not Milo's in-cluster Services.
        cargv += ["--internal-endpoint-template",
                  url + "/projects/{name}/control-plane"]
    coord = Proc("coordinator-" + mode, cargv, ("fleet", "status"), env)
    status = coord.urls["status"]
    wait_until("coordinator /readyz (%s)" % mode,
               lambda: (lambda s: (s[0] == 200, s))(
                   http_json("GET", status + "/readyz")), 30)

    def leads():
        st, doc = http_json("GET", status + "/status")
        return (st == 200 and isinstance(doc, dict) and
                doc.get("role") == "leader" and doc.get("mode") == mode,
                (st, str(doc)[:300]))
    wait_until("the coordinator leads (%s mode)" % mode, leads, 30)

    wargv = container_argv(sts, worker_bin, penv, cfg_dir) + local
    worker = Proc("worker-" + mode, wargv, ("status",), env)
    wstatus = worker.urls["status"]
    wait_until("worker /readyz (holds its Lease)",
               lambda: (lambda s: (s[0] == 200, s))(
                   http_json("GET", wstatus + "/readyz")), 30)

    def joined():
        st, doc = http_json("GET", status + "/status")
        ws = [w for w in (doc or {}).get("workers", [])
              if isinstance(doc, dict)] if st == 200 else []
        return (any(w.get("name") == "mcfleet-worker-0" and
                    w.get("state") == "active" for w in ws), ws)
    took = wait_until("mcfleet-worker-0 joins the leader", joined, 30)
    ok("%s mode: coordinator and worker run with the rendered config and "
       "args (%s / %s) and loopback overrides; the worker joined in %.1f s"
       % (mode, " ".join(a.replace(cfg_dir, "CONFIG") for a in
                         cargv[1:len(container(dep)["args"]) + 1]),
          " ".join(a.replace(cfg_dir, "CONFIG") for a in
                   wargv[1:len(container(sts)["args"]) + 1]), took))

    def synced():
        st, doc = http_json("GET", status + "/status")
        ps = (doc or {}).get("projects", []) if st == 200 and \
            isinstance(doc, dict) else []
        return (any(p.get("name") == "p1" and
                    p.get("owner") == "mcfleet-worker-0" and
                    p.get("state") == "synced" for p in ps), ps)
    took = wait_until("project p1 synced on mcfleet-worker-0", synced, 60)
    ok("%s mode: project p1 engaged and synced on mcfleet-worker-0 in "
       "%.1f s" % (mode, took))

    # The worker reconciles inside p1's plane: a change to the example
    # MyResource reaches its ConfigMap.
    plane = url + "/apis/resourcemanager.miloapis.com/v1alpha1/projects/p1/" \
        "control-plane"
    st, b = http_json("PATCH", plane + "/apis/example.mcfleet.io/v1alpha1/"
                      "namespaces/default/myresources/example",
                      {"spec": {"data": {"mode": mode}}},
                      "application/merge-patch+json")
    expect(st == 200, "patch the example MyResource", 200, (st, b))

    def converged():
        st, cm = http_json("GET", plane + "/api/v1/namespaces/default/"
                           "configmaps/example-config")
        data = (cm or {}).get("data") if st == 200 and \
            isinstance(cm, dict) else None
        return ((data or {}).get("mode") == mode, (st, data))
    took = wait_until("ConfigMap example-config follows the MyResource",
                      converged, 60)
    ok("%s mode: deploy/examples/myresource.yaml reconciled in p1: its "
       "ConfigMap has mode=%s after %.1f s" % (mode, mode, took))

    grace_w = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    rc, took = worker.terminate(grace_w)
    expect(rc == 0, "the worker exits 0 after SIGTERM", 0,
           "%s\n%s" % (rc, worker.tail()))
    ok("%s mode: SIGTERM: the worker handed off and exited 0 in %.1f s, "
       "within terminationGracePeriodSeconds %d s" % (mode, took, grace_w))
    grace_c = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    rc, took = coord.terminate(grace_c)
    expect(rc == 0, "the coordinator exits 0 after SIGTERM", 0,
           "%s\n%s" % (rc, coord.tail()))
    ok("%s mode: SIGTERM: the coordinator exited 0 in %.1f s (grace %d s)"
       % (mode, took, grace_c))


# ---- main -------------------------------------------------------------------

def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    check, root, rest = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:]
    try:
        kubectl_path()
        if check == "render":
            check_render(root)
        elif check == "manifests" and len(rest) == 2:
            check_manifests(root, *rest)
        elif check == "dockerfile" and len(rest) >= 1:
            check_dockerfile(root, rest)
        elif check == "kubesim" and len(rest) == 3:
            check_kubesim(root, *rest)
        else:
            print(__doc__)
            return 2
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    print("PASS deploy %s" % check, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
