#!/usr/bin/env bash
# kubectl acceptance test for kubesim: real kubectl 1.32 as the judge.
#
# Usage: bash tests/acceptance/kubectl_test.sh /path/to/kubesim
#
# Implements the kubectl checks K1 to K24 of the acceptance checklist in
# KUBE_API.md (part 2 §8), with part 1's adjustments (nine api-resources rows
# at the root, seven under a project prefix), plus checks of part 1's
# additions: CRDs, Events shown by describe (EVENTS), namespace deletion
# (NSDEL), garbage collection (GC), and TLS. Fault checks (K20, K21) POST
# rules to /_sim/faults (§7). Every check starts its own kubesim on 127.0.0.1:0,
# runs kubectl with a fresh --cache-dir per invocation and asserts on
# kubesim's request log (/_sim/requests) as well as on kubectl's output.
#
# Each check runs in a subshell: `fail` ends that check only. The script
# prints `ok <check> <what>` or `FAIL <check>: <why>` per check and ends with
# `N passed, M failed`; it exits 1 if any check failed.
#
# MCF_TEST_TIMEOUT_SCALE (a positive integer, default 1) scales every
# deadline, for sanitizer builds. KUBECTL_TEST_KEEP=1 keeps the temp dir
# (kubectl outputs, kubesim logs) for inspection.

set -u -o pipefail

KUBESIM=${1:-}
if [[ -z $KUBESIM || ! -x $KUBESIM ]]; then
	echo "usage: $0 /path/to/kubesim" >&2
	exit 2
fi
KUBESIM=$(cd "$(dirname "$KUBESIM")" && pwd)/$(basename "$KUBESIM")

SCALE=${MCF_TEST_TIMEOUT_SCALE:-1}
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || SCALE=1

PY=/usr/bin/python3
KT=$((60 * SCALE)) # upper bound for one kubectl invocation, seconds

for tool in kubectl curl openssl timeout "$PY"; do
	if ! command -v "$tool" > /dev/null 2>&1; then
		echo "FAIL setup: $tool not found" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
done

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/kubectl_test.XXXXXX")

PROJ_API=/apis/resourcemanager.miloapis.com/v1alpha1

# ---------------------------------------------------------------------------
# Process bookkeeping. Every background child's pid goes to a pid file; the
# check's subshell kills its own on exit, the main EXIT trap kills whatever
# is left and removes the temp dir.

alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2> /dev/null | cut -d' ' -f1) ||
		return 1
	[[ -n $st && $st != Z ]]
}

kill_pids() { # kill_pids PIDFILE: TERM, then KILL what is left after 5 s
	local f=$1 pid end
	[[ -s $f ]] || return 0
	local -a pids
	mapfile -t pids < "$f"
	for pid in "${pids[@]}"; do
		alive "$pid" && kill -TERM "$pid" 2> /dev/null
	done
	end=$((SECONDS + 5 * SCALE))
	for pid in "${pids[@]}"; do
		while alive "$pid" && ((SECONDS < end)); do
			sleep 0.05
		done
		alive "$pid" && kill -KILL "$pid" 2> /dev/null
	done
	: > "$f"
}

main_cleanup() {
	local f
	for f in "$ROOT"/*/pids; do
		[[ -e $f ]] && kill_pids "$f"
	done
	if [[ -n ${KUBECTL_TEST_KEEP:-} ]]; then
		echo "# kept $ROOT" >&2
	else
		rm -rf "$ROOT"
	fi
}
trap main_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Per-check state (set by run_check inside the subshell).
W=""       # the check's work dir
S=""       # the current kubesim URL
SIM_DIR="" # the current kubesim's stdout/stderr dir
MARK=0     # request-log mark used by fail() for diagnostics

track() { echo "$1" >> "$W/pids"; }

check_cleanup() {
	kill_pids "$W/pids"
	wait 2> /dev/null
}

# ---------------------------------------------------------------------------
# Failure reporting.

oneline() { # oneline FILE: the first lines of FILE on one line
	head -c 600 "$1" 2> /dev/null | tr '\n' '|' | sed 's/|$//; s/|/ | /g'
}

note() { printf '%s\n' "$*" >> "$W/diag"; }

fail() {
	printf '%s\n' "$*" > "$W/msg"
	if [[ -n $S ]]; then
		note "request log since seq $MARK on $S:"
		reqs_brief "$MARK" >> "$W/diag" 2>&1
		note "kubesim stderr (last lines):"
		tail -n 5 "$SIM_DIR/err" | sed 's/^/  /' >> "$W/diag"
	fi
	exit 1
}

# poll SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or the
# scaled deadline passes (1).
poll() {
	local end=$((SECONDS + $1 * SCALE))
	shift
	while :; do
		"$@" && return 0
		((SECONDS >= end)) && return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------
# kubesim.

# start_sim [FLAGS...]: start kubesim, set S to its URL and SIM_DIR.
start_sim() {
	SIM_DIR=$(mktemp -d "$W/sim.XXXX")
	: > "$SIM_DIR/out"
	"$KUBESIM" --listen 127.0.0.1:0 "$@" > "$SIM_DIR/out" 2> "$SIM_DIR/err" &
	local pid=$!
	track "$pid"
	local end=$((SECONDS + 20 * SCALE)) line=""
	while :; do
		# Wait for a complete first line (newline-terminated).
		if [[ $(wc -l < "$SIM_DIR/out") -ge 1 ]]; then
			line=$(head -n 1 "$SIM_DIR/out")
			break
		fi
		if ! alive "$pid"; then
			S=""
			fail "kubesim $* exited before listening: $(oneline "$SIM_DIR/err")"
		fi
		if ((SECONDS >= end)); then
			S=""
			fail "kubesim $* printed no listening line within $((20 * SCALE)) s"
		fi
		sleep 0.05
	done
	if [[ ! $line =~ ^listening\ on\ (https?://127\.0\.0\.1:[0-9]+)$ ]]; then
		S=""
		fail "kubesim's first stdout line is not 'listening on http(s)://127.0.0.1:PORT': '$line'"
	fi
	S=${BASH_REMATCH[1]}
	MARK=0
}

# ---------------------------------------------------------------------------
# Request log (/_sim/requests), parsed with Debian's python.

cat > "$ROOT/reqlog.py" << 'EOF'
# stdin: the JSON of /_sim/requests; argv: MODE SINCE [FIELD=REGEX...]
import json, re, signal, sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # callers may pipe into head

mode, since = sys.argv[1], sys.argv[2]
items = json.load(sys.stdin)["items"]
if mode == "last":
    print(max([int(e["seq"]) for e in items] + [int(since)]))
    sys.exit(0)
filt = []
for a in sys.argv[3:]:
    k, _, v = a.partition("=")
    filt.append((k, re.compile(v)))
keys = ("seq", "plane", "method", "path", "query", "status", "content_type",
        "user_agent", "accept")
for e in items:
    if str(e.get("path", "")).startswith("/_sim/"):
        continue
    if all(rx.search(str(e.get(k, ""))) for k, rx in filt):
        if mode == "brief":
            print("  %s %s %s %s?%s -> %s %s %s" % (
                e.get("seq"), e.get("plane") or "-", e.get("method"),
                e.get("path"), e.get("query"), e.get("status"),
                e.get("content_type") or "", e.get("user_agent", "")[:24]))
        else:
            print("\t".join(str(e.get(k, "")) for k in keys))
EOF

# reqlog MODE SINCE [FIELD=REGEX...]: fetch the log after SINCE and filter.
# (python -S: skipping site.py halves the start-up time.)
reqlog() {
	curl -sS -k --max-time 10 "$S/_sim/requests?since=$2" |
		"$PY" -S "$ROOT/reqlog.py" "$@"
}
# last_seq: the newest request-log seq of the current kubesim.
last_seq() { reqlog last 0; }
# mark: remember the log position; later reqs calls look after it.
mark() {
	MARK=$(last_seq) || fail "cannot read $S/_sim/requests"
}
# reqs SINCE [FIELD=REGEX...]: matching entries after SINCE, one per line,
# tab-separated: seq plane method path query status content_type ua accept.
reqs() { reqlog tsv "$@"; }
reqs_brief() { reqlog brief "$@"; }
have_req() { [[ -n $(reqs "$@") ]]; }
count_req() { reqs "$@" | wc -l; }

# expect_req WHAT [FIELD=REGEX...]: at least one entry after MARK matches.
expect_req() {
	local what=$1
	shift
	have_req "$MARK" "$@" ||
		fail "request log has no $what ($*) after seq $MARK"
}
# expect_no_req WHAT [FIELD=REGEX...]: no entry after MARK matches.
expect_no_req() {
	local what=$1 hit
	shift
	hit=$(reqs_brief "$MARK" "$@" | head -n 1 | sed 's/^ *//')
	[[ -z $hit ]] || fail "unexpected $what in request log: $hit"
}

# ---------------------------------------------------------------------------
# kubectl. Always --server (or --kubeconfig) and a fresh --cache-dir.

cachedir() { mktemp -d "$W/cache.XXXX"; }

# krun_at TAG SERVER ARGS...: stdout to $W/TAG.out, stderr to $W/TAG.err.
krun_at() {
	local tag=$1 srv=$2
	shift 2
	timeout -k 5 "$KT" kubectl --server "$srv" --cache-dir "$(cachedir)" \
		"$@" > "$W/$tag.out" 2> "$W/$tag.err"
}
krun() {
	local tag=$1
	shift
	krun_at "$tag" "$S" "$@"
}
# kok_at TAG SERVER ARGS...: must exit 0 with an empty stderr.
kok_at() {
	local tag=$1 srv=$2 rc
	shift 2
	krun_at "$tag" "$srv" "$@"
	rc=$?
	((rc == 0)) || fail "kubectl $* exited $rc: $(oneline "$W/$tag.err")"
	[[ -s $W/$tag.err ]] &&
		fail "kubectl $* wrote to stderr: $(oneline "$W/$tag.err")"
	return 0
}
kok() {
	local tag=$1
	shift
	kok_at "$tag" "$S" "$@"
}
# kerr TAG ARGS...: must exit non-zero; stderr is kept for inspection.
kerr_at() {
	local tag=$1 srv=$2 rc
	shift 2
	krun_at "$tag" "$srv" "$@"
	rc=$?
	((rc != 0)) || fail "kubectl $* succeeded, expected an error; stdout: $(oneline "$W/$tag.out")"
	return 0
}
kerr() {
	local tag=$1
	shift
	kerr_at "$tag" "$S" "$@"
}

# kbg TAG SERVER ARGS...: kubectl in the background. $W/TAG.rc appears when
# it exits; $W/TAG.pid holds the pid of its `timeout` wrapper.
kbg() {
	local tag=$1 srv=$2 cd
	shift 2
	rm -f "$W/$tag.rc" "$W/$tag.pid" # a tag may be reused within a check
	cd=$(cachedir)
	(
		timeout -k 5 "$KT" kubectl --server "$srv" --cache-dir "$cd" "$@" \
			> "$W/$tag.out" 2> "$W/$tag.err" &
		echo $! > "$W/$tag.pid"
		wait $!
		echo $? > "$W/$tag.rc"
	) &
	track $!
	poll 5 test -s "$W/$tag.pid" || fail "background kubectl did not start"
	track "$(cat "$W/$tag.pid")"
}
kbg_running() { [[ ! -e $W/$1.rc ]]; }
kbg_done() { [[ -s $W/$1.rc ]]; }
kbg_stop() {
	local pid
	pid=$(cat "$W/$1.pid")
	alive "$pid" && kill -TERM "$pid" 2> /dev/null
	poll 10 kbg_done "$1" || fail "background kubectl $1 did not stop"
}

# Output assertions.
lines_at_least() { # lines_at_least TAG REGEX N: stdout has >= N matching lines
	[[ $(grep -c -- "$2" "$W/$1.out") -ge $3 ]]
}
out() { cat "$W/$1.out"; }
expect_out() { # expect_out TAG EXPECTED: stdout equals EXPECTED (+ newline)
	local got
	got=$(cat "$W/$1.out")
	[[ $got == "$2" ]] || fail "expected stdout '$2', got '$(oneline "$W/$1.out")'"
}
expect_err_has() { # expect_err_has TAG TEXT: stderr contains TEXT
	grep -qF -- "$2" "$W/$1.err" ||
		fail "expected stderr to contain '$2', got '$(oneline "$W/$1.err")'"
}
expect_eq() { # expect_eq WHAT GOT WANT
	[[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
}

# jp TAG RESOURCE JSONPATH [ARGS...]: kubectl get -o jsonpath, printed.
jp() {
	local tag=$1 res=$2 path=$3
	shift 3
	kok "$tag" get "$res" "$@" -o "jsonpath=$path"
	cat "$W/$tag.out"
}

# list_rv URL: metadata.resourceVersion of a list, straight from kubesim.
list_rv() {
	curl -sS -k --max-time 10 "$1" |
		"$PY" -S -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])'
}

# http_code URL: the HTTP status kubesim answers a GET of URL with.
http_code() {
	curl -sS -k -o /dev/null -w '%{http_code}' --max-time 10 "$1"
}
# gone URL: a GET of URL is answered 404 (for poll).
gone() { [[ $(http_code "$1") == 404 ]]; }

# elapsed_since T0: seconds since $EPOCHREALTIME was T0, one decimal.
elapsed_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# Fault rules (KUBE_API §7).
# add_fault RULE-JSON: POST the rule to /_sim/faults; it must be accepted.
add_fault() {
	local code
	code=$(curl -sS -k -o "$W/fault.out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/json' -d "$1" "$S/_sim/faults") ||
		fail "cannot POST $S/_sim/faults"
	[[ $code == 2?? ]] ||
		fail "POST /_sim/faults $1 answered $code: $(oneline "$W/fault.out")"
}
# clear_faults: DELETE every rule.
clear_faults() {
	local code
	code=$(curl -sS -k -o "$W/fault.out" -w '%{http_code}' --max-time 10 \
		-X DELETE "$S/_sim/faults") || fail "cannot DELETE $S/_sim/faults"
	[[ $code == 2?? ]] ||
		fail "DELETE /_sim/faults answered $code: $(oneline "$W/fault.out")"
}

# expect_table TAG HEADER [ROW...]: kubectl get's stdout is HEADER and then
# exactly the ROWs, in order. Columns are compared with runs of blanks
# squeezed to one space; each ROW omits the last (AGE) column, which must
# hold a human duration such as 0s, 5m or 2d3h.
expect_table() {
	local tag=$1 want_h=$2 got_h got want
	shift 2
	got_h=$(head -n 1 "$W/$tag.out" | tr -s ' ')
	[[ $got_h == "$want_h" ]] ||
		fail "table header: expected '$want_h', got '$got_h'"
	awk 'NR > 1 && $NF !~ /^[0-9]+[smhdy]([0-9]+[smhd])?$/ { bad = 1 } END { exit bad }' \
		"$W/$tag.out" || fail "an AGE cell is not a human duration: $(oneline "$W/$tag.out")"
	got=$(awk 'NR > 1 { $NF = ""; sub(/ +$/, ""); print }' "$W/$tag.out")
	want=$(if (($# > 0)); then printf '%s\n' "$@"; fi)
	[[ $got == "$want" ]] ||
		fail "table rows (without AGE): expected [$(tr '\n' ';' <<< "$want")] got [$(tr '\n' ';' <<< "$got")]"
}

# File helpers.
write() { cat > "$W/$1"; }

project_yaml() { # project_yaml NAME OWNER [FINALIZER]
	local fin=""
	[[ -n ${3:-} ]] && fin=$'\n  finalizers: ['"$3"']'
	cat << EOF
apiVersion: resourcemanager.miloapis.com/v1alpha1
kind: Project
metadata:
  name: $1$fin
spec:
  ownerRef:
    kind: Organization
    name: $2
EOF
}

cm_yaml() { # cm_yaml NAME NAMESPACE KEY=VALUE [LABELS-FLOW-MAP]
	# No "labels: {}" when there are none: the API server drops empty
	# maps, so kubectl apply would find a difference on every run.
	cat << EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  namespace: $2
${4:+  labels: $4
}data:
  ${3%%=*}: "${3#*=}"
EOF
}

# make_project NAME: create a Project through kubectl at the root.
make_project() {
	project_yaml "$1" org1 | write "project-$1.yaml"
	kok "mkp-$1" create -f "$W/project-$1.yaml"
	expect_out "mkp-$1" "project.resourcemanager.miloapis.com/$1 created"
}

lease_yaml() { # lease_yaml NAME NAMESPACE [HOLDER]
	local spec="{}"
	[[ -n ${3:-} ]] && spec="{holderIdentity: $3, leaseDurationSeconds: 15}"
	cat << EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: $1
  namespace: $2
spec: $spec
EOF
}

ns_yaml() { # ns_yaml NAME
	printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1"
}

ready_status='{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"Project is ready","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}'

# api_rows TAG: api-resources rows as "name apiversion namespaced kind".
api_rows() {
	awk 'NR > 1 { print $1, $(NF - 2), $(NF - 1), $NF }' "$W/$1.out" |
		LC_ALL=C sort
}

ROOT_ROWS=$(LC_ALL=C sort << 'EOF'
configmaps v1 true ConfigMap
customresourcedefinitions apiextensions.k8s.io/v1 false CustomResourceDefinition
events events.k8s.io/v1 true Event
events v1 true Event
leases coordination.k8s.io/v1 true Lease
namespaces v1 false Namespace
projectcontrolplanes infrastructure.miloapis.com/v1alpha1 false ProjectControlPlane
projects resourcemanager.miloapis.com/v1alpha1 false Project
secrets v1 true Secret
EOF
)
PLANE_ROWS=$(grep -v miloapis <<< "$ROOT_ROWS")

# expect_api_rows TAG WANT WHERE
expect_api_rows() {
	local got
	head -n 1 "$W/$1.out" | grep -Eq '^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND$' ||
		fail "$3: api-resources header is '$(head -n 1 "$W/$1.out")'"
	got=$(api_rows "$1")
	[[ $got == "$2" ]] ||
		fail "$3: api-resources rows differ: expected [$(tr '\n' ';' <<< "$2")] got [$(tr '\n' ';' <<< "$got")]"
	awk '$1 == "configmaps" && $2 == "cm" { c = 1 } $1 == "namespaces" && $2 == "ns" { n = 1 }
	     END { exit !(c && n) }' "$W/$1.out" ||
		fail "$3: api-resources lacks short names cm (configmaps) or ns (namespaces)"
}

# ---------------------------------------------------------------------------
# The checks.

check_K1() { # kubectl version pins 1.32
	start_sim
	mark
	kok v version
	grep -Eq '^Server Version: v1\.32\.[0-9]+$' "$W/v.out" ||
		fail "no 'Server Version: v1.32.x' line in: $(oneline "$W/v.out")"
	local disp k132
	disp=$(reqs "$MARK" method='^GET$' path='^/version$' user_agent='^kubectl-dispatcher/' status='^200$' | head -n 1 | cut -f1)
	[[ -n $disp ]] || fail "no GET /version from the kubectl dispatcher answered 200"
	k132=$(reqs "$disp" user_agent='^kubectl/v1\.32\.' | head -n 1 | cut -f1)
	[[ -n $k132 ]] ||
		fail "no request with user agent kubectl/v1.32.* after the dispatcher's /version (seq $disp): the dispatcher did not pick kubectl 1.32"
	expect_req "GET /version from kubectl 1.32" method='^GET$' path='^/version$' user_agent='^kubectl/v1\.32\.4 ' status='^200$'
}

# expect_legacy_discovery: since MARK kubectl fetched every group-version
# separately, as legacy discovery makes it do.
expect_legacy_discovery() {
	expect_req "legacy GET /api/v1" method='^GET$' path='^/api/v1$' status='^200$'
	expect_req "legacy GET /apis/resourcemanager.miloapis.com/v1alpha1" method='^GET$' path='^/apis/resourcemanager\.miloapis\.com/v1alpha1$' status='^200$'
	expect_req "legacy GET /apis/apiextensions.k8s.io/v1" method='^GET$' path='^/apis/apiextensions\.k8s\.io/v1$' status='^200$'
}

check_K2() { # api-resources: nine rows, aggregated and legacy discovery
	start_sim
	mark
	kok agg api-resources
	expect_api_rows agg "$ROOT_ROWS" "aggregated discovery"
	expect_req "aggregated GET /apis" method='^GET$' path='^/apis$' accept='as=APIGroupDiscoveryList' status='^200$'
	# Aggregated discovery answers everything from /api and /apis.
	expect_no_req "per-group discovery request with aggregated discovery" method='^GET$' path='^/(api/v1|apis/[^/]+/[^/]+)$'

	local agg_out
	agg_out=$(out agg)
	start_sim --discovery legacy
	mark
	kok leg api-resources
	expect_api_rows leg "$ROOT_ROWS" "--discovery legacy"
	expect_legacy_discovery
	[[ $(out leg) == "$agg_out" ]] ||
		fail "api-resources output differs between aggregated and legacy discovery"
}

check_K3() { # apply three times: created, unchanged, configured (SMP)
	start_sim
	apply_thrice
}

# apply_thrice: K3's body, against the kubesim at $S.
apply_thrice() {
	cm_yaml cm1 default a=1 | write cm.yaml
	mark
	kok a1 apply -f "$W/cm.yaml"
	expect_out a1 "configmap/cm1 created"
	expect_req "POST of the new ConfigMap" method='^POST$' path='^/api/v1/namespaces/default/configmaps$' \
		query='fieldManager=kubectl-client-side-apply' query='fieldValidation=Strict' status='^201$'
	[[ -n $(jp g1 cm/cm1 '{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}') ]] ||
		fail "created ConfigMap lacks the last-applied-configuration annotation"

	mark
	kok a2 apply -f "$W/cm.yaml"
	expect_out a2 "configmap/cm1 unchanged"
	expect_no_req "write for an unchanged apply" method='^(PATCH|PUT|POST)$'
	expect_req "GET of the existing object" method='^GET$' path='^/api/v1/namespaces/default/configmaps/cm1$' status='^200$'

	cm_yaml cm1 default a=2 | write cm.yaml
	mark
	kok a3 apply -f "$W/cm.yaml"
	expect_out a3 "configmap/cm1 configured"
	expect_req "strategic-merge PATCH" method='^PATCH$' path='^/api/v1/namespaces/default/configmaps/cm1$' \
		content_type='^application/strategic-merge-patch\+json' query='fieldManager=kubectl-client-side-apply' status='^200$'
	[[ $(count_req "$MARK" method='^PATCH$') == 1 ]] ||
		fail "the edited apply sent $(count_req "$MARK" method='^PATCH$') PATCH requests, expected 1"
	expect_eq "data.a after the edited apply" "$(jp g2 cm/cm1 '{.data.a}')" 2
}

check_K4() { # apply a Project, edit, apply: merge patch, generation 1 -> 2
	start_sim
	project_yaml p1 org1 | write project.yaml
	mark
	kok a1 apply -f "$W/project.yaml"
	expect_out a1 "project.resourcemanager.miloapis.com/p1 created"
	expect_req "POST of the Project" method='^POST$' path="^$PROJ_API/projects\$" \
		query='fieldManager=kubectl-client-side-apply' status='^201$'
	expect_eq "generation after create" "$(jp g1 project/p1 '{.metadata.generation}')" 1

	project_yaml p1 org2 | write project.yaml
	mark
	kok a2 apply -f "$W/project.yaml"
	expect_out a2 "project.resourcemanager.miloapis.com/p1 configured"
	expect_req "merge-patch PATCH" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/merge-patch\+json' status='^200$'
	expect_no_req "strategic-merge PATCH for a Project" content_type='strategic-merge-patch'
	expect_eq "generation after the spec change" "$(jp g2 project/p1 '{.metadata.generation}')" 2
	expect_eq "spec.ownerRef.name" "$(jp g3 project/p1 '{.spec.ownerRef.name}')" org2
}

check_K5() { # server-side Table: the per-kind columns of §1.4
	start_sim
	make_project p1
	make_project p2
	kok s patch project p2 --subresource=status --type=merge -p "$ready_status"
	{
		cm_yaml c1 default a=1
		echo ---
		ns_yaml k5
		echo ---
		cat << 'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: c2, namespace: k5}
data: {a: "1", b: "2"}
binaryData: {z: AAAA}
EOF
		echo ---
		lease_yaml l1 kube-system holder-1
		echo ---
		lease_yaml l2 kube-system
	} | write objs.yaml
	kok c create -f "$W/objs.yaml"

	local table='as=Table;v=v1;g=meta\.k8s\.io'
	mark
	kok p get projects
	expect_table p 'NAME READY AGE' 'p1 <none>' 'p2 True'
	expect_req "Table list of projects" method='^GET$' path="^$PROJ_API/projects\$" \
		query='^limit=500$' accept="$table" status='^200$'
	kok a get cm -A
	expect_table a 'NAMESPACE NAME DATA AGE' 'default c1 1' 'k5 c2 3'
	expect_req "Table list of configmaps in all namespaces" method='^GET$' path='^/api/v1/configmaps$' \
		query='^limit=500$' accept="$table" status='^200$'
	kok l get lease -n kube-system
	expect_table l 'NAME HOLDER AGE' 'l1 holder-1' 'l2 <none>'
	expect_req "Table list of leases" method='^GET$' path='^/apis/coordination\.k8s\.io/v1/namespaces/kube-system/leases$' \
		query='^limit=500$' accept="$table" status='^200$'
}

check_K6() { # default (strategic) patch on a Project: 415, kubectl's clean error
	start_sim
	make_project p1
	local rv0 rc
	rv0=$(jp g0 project/p1 '{.metadata.resourceVersion}')
	mark
	krun sp patch project p1 -p '{"spec":{"ownerRef":{"name":"org2"}}}'
	rc=$?
	expect_eq "kubectl patch (strategic) exit code" "$rc" 1
	expect_err_has sp 'application/strategic-merge-patch+json is not supported by resourcemanager.miloapis.com/v1alpha1, Kind=Project'
	expect_req "GET of the object" method='^GET$' path="^$PROJ_API/projects/p1\$" status='^200$'
	expect_req "strategic PATCH answered 415" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/strategic-merge-patch\+json' query='fieldManager=kubectl-patch' status='^415$'
	expect_no_req "successful write" method='^(PATCH|PUT|POST)$' status='^2'
	expect_eq "spec.ownerRef.name after the rejected patch" "$(jp g1 project/p1 '{.spec.ownerRef.name}')" org1
	expect_eq "resourceVersion after the rejected patch" "$(jp g2 project/p1 '{.metadata.resourceVersion}')" "$rv0"
}

check_K7() { # patch --type=merge / --type=json; a failing test op is 422
	start_sim
	make_project p1
	mark
	kok m patch project p1 --type=merge -p '{"spec":{"ownerRef":{"name":"org2"}}}'
	expect_out m "project.resourcemanager.miloapis.com/p1 patched"
	expect_req "merge PATCH" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/merge-patch\+json' query='fieldManager=kubectl-patch' status='^200$'
	expect_eq "ownerRef.name after merge patch" "$(jp g1 project/p1 '{.spec.ownerRef.name}')" org2

	mark
	kok j patch project p1 --type=json -p '[{"op":"replace","path":"/spec/ownerRef/name","value":"org3"}]'
	expect_out j "project.resourcemanager.miloapis.com/p1 patched"
	expect_req "JSON PATCH" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/json-patch\+json' status='^200$'
	expect_eq "ownerRef.name after JSON patch" "$(jp g2 project/p1 '{.spec.ownerRef.name}')" org3

	mark
	kerr t patch project p1 --type=json \
		-p '[{"op":"test","path":"/spec/ownerRef/name","value":"nope"},{"op":"replace","path":"/spec/ownerRef/name","value":"org4"}]'
	expect_req "422 for the failing test op" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/json-patch\+json' status='^422$'
	[[ -s $W/t.err ]] || fail "failing test op: kubectl printed no error"
	expect_eq "ownerRef.name after the failed test op" "$(jp g3 project/p1 '{.spec.ownerRef.name}')" org3
}

check_K8() { # replace with a stale resourceVersion: Conflict
	start_sim
	cm_yaml cm1 default a=1 | write cm.yaml
	kok c create -f "$W/cm.yaml"
	expect_out c "configmap/cm1 created"
	kok g get cm cm1 -o yaml
	sed 's/^  a: "1"$/  a: "edited"/; s/^  a: .1.$/  a: "edited"/' "$W/g.out" > "$W/f.yaml"
	grep -q 'a: "edited"' "$W/f.yaml" || fail "could not edit the saved ConfigMap: $(oneline "$W/f.yaml")"
	grep -q '^  resourceVersion: ' "$W/f.yaml" || fail "kubectl get -o yaml has no resourceVersion"
	# Someone else changes the object: its resourceVersion moves on.
	kok l label cm cm1 touched=yes
	expect_out l "configmap/cm1 labeled"
	mark
	kerr r replace -f "$W/f.yaml"
	expect_err_has r 'Error from server (Conflict): '
	expect_err_has r 'Operation cannot be fulfilled on configmaps "cm1": the object has been modified; please apply your changes to the latest version and try again'
	expect_req "PUT answered 409" method='^PUT$' path='^/api/v1/namespaces/default/configmaps/cm1$' \
		query='fieldManager=kubectl-replace' status='^409$'
	expect_eq "data.a after the rejected replace" "$(jp g2 cm/cm1 '{.data.a}')" 1
}

check_K9() { # status subresource: conditions accepted, metadata ignored
	start_sim
	make_project p1
	mark
	kok s1 patch project p1 --subresource=status --type=merge -p "$ready_status"
	expect_out s1 "project.resourcemanager.miloapis.com/p1 patched"
	expect_req "GET of /status" method='^GET$' path="^$PROJ_API/projects/p1/status\$" status='^200$'
	expect_req "merge PATCH of /status" method='^PATCH$' path="^$PROJ_API/projects/p1/status\$" \
		content_type='^application/merge-patch\+json' status='^200$'
	expect_eq "Ready condition" "$(jp g1 project/p1 '{.status.conditions[?(@.type=="Ready")].status}')" True
	expect_eq "generation after the status write" "$(jp g2 project/p1 '{.metadata.generation}')" 1

	local rv
	rv=$(jp g3 project/p1 '{.metadata.resourceVersion}')
	mark
	kok s2 patch project p1 --subresource=status --type=merge -p '{"metadata":{"labels":{"x":"y"}}}'
	expect_req "metadata PATCH of /status answered 200" method='^PATCH$' path="^$PROJ_API/projects/p1/status\$" status='^200$'
	expect_eq "label x after a metadata patch of /status" "$(jp g4 project/p1 '{.metadata.labels.x}')" ""
	expect_eq "generation after a metadata patch of /status" "$(jp g5 project/p1 '{.metadata.generation}')" 1
	expect_eq "resourceVersion after a no-op /status patch (KUBE_API §2 no-op rule)" \
		"$(jp g6 project/p1 '{.metadata.resourceVersion}')" "$rv"
}

check_K10() { # kubectl wait --for=condition=Ready
	start_sim
	make_project p1
	make_project p2
	mark
	kbg w "$S" wait --for=condition=Ready project/p1 "--timeout=$((10 * SCALE))s"
	# Write the status once kubectl's watch is open (instead of after 2 s).
	poll 10 have_req "$MARK" method='^GET$' path="^$PROJ_API/projects\$" query='watch=true' query='fieldSelector=metadata\.name%3Dp1' ||
		fail "kubectl wait opened no watch on projects within 10 s"
	kbg_running w || fail "kubectl wait ended before the condition was written: $(oneline "$W/w.err")"
	kok s patch project p1 --subresource=status --type=merge -p "$ready_status"
	poll 15 kbg_done w || fail "kubectl wait did not return within 15 s of the status write"
	expect_eq "kubectl wait exit code" "$(cat "$W/w.rc")" 0
	expect_out w "project.resourcemanager.miloapis.com/p1 condition met"
	[[ -s $W/w.err ]] && fail "kubectl wait wrote to stderr: $(oneline "$W/w.err")"
	expect_req "GET of the object" method='^GET$' path="^$PROJ_API/projects/p1\$" status='^200$'
	expect_req "reflector list" method='^GET$' path="^$PROJ_API/projects\$" query='fieldSelector=metadata\.name%3Dp1' query='^((?!watch=).)*$' status='^200$'
	expect_req "reflector watch from the list's RV" method='^GET$' path="^$PROJ_API/projects\$" query='resourceVersion=[0-9]+' query='watch=true' status='^200$'

	# Without a status write: times out (shortened from 10 s to 3 s).
	mark
	kerr n wait --for=condition=Ready project/p2 --timeout=3s
	expect_err_has n 'timed out waiting for the condition on projects/p2'
}

check_K11() { # wait with the WatchList client: one watch, sendInitialEvents
	start_sim
	make_project p1
	mark
	KUBE_FEATURE_WatchListClient=true kbg w "$S" wait --for=condition=Ready project/p1 "--timeout=$((10 * SCALE))s"
	poll 10 have_req "$MARK" method='^GET$' path="^$PROJ_API/projects\$" query='watch=true' ||
		fail "kubectl wait opened no watch on projects within 10 s; stderr: $(oneline "$W/w.err")"
	kbg_running w || fail "kubectl wait ended before the condition was written: $(oneline "$W/w.err")"
	kok s patch project p1 --subresource=status --type=merge -p "$ready_status"
	poll 15 kbg_done w || fail "kubectl wait did not return within 15 s of the status write"
	expect_eq "kubectl wait exit code" "$(cat "$W/w.rc")" 0
	expect_out w "project.resourcemanager.miloapis.com/p1 condition met"
	[[ -s $W/w.err ]] && fail "kubectl wait wrote to stderr: $(oneline "$W/w.err")"
	expect_req "GET of the object" method='^GET$' path="^$PROJ_API/projects/p1\$" status='^200$'
	local n
	n=$(count_req "$MARK" method='^GET$' path="^$PROJ_API/projects\$")
	[[ $n == 1 ]] ||
		fail "expected a single request on the projects collection (the watch-list), got $n: $(reqs_brief "$MARK" path="^$PROJ_API/projects\$" | tr '\n' ';')"
	expect_req "watch-list request" method='^GET$' path="^$PROJ_API/projects\$" \
		query='allowWatchBookmarks=true' query='fieldSelector=metadata\.name%3Dp1' \
		query='resourceVersionMatch=NotOlderThan' query='sendInitialEvents=true' \
		query='timeoutSeconds=[0-9]+' query='watch=true' status='^200$'
}

check_K12() { # delete blocks on a finalizer, then completes
	start_sim
	project_yaml p1 org1 example.com/hold | write project.yaml
	kok c create -f "$W/project.yaml"
	expect_eq "finalizers after create" "$(jp g0 project/p1 '{.metadata.finalizers}')" '["example.com/hold"]'
	local gen0
	gen0=$(jp g1 project/p1 '{.metadata.generation}')
	mark
	kbg d "$S" delete project p1 "--timeout=$((15 * SCALE))s"
	poll 10 have_req "$MARK" method='^GET$' path="^$PROJ_API/projects\$" query='watch=true' ||
		fail "kubectl delete did not start waiting (no watch on projects) within 10 s; stderr: $(oneline "$W/d.err")"
	expect_req "DELETE answered 200" method='^DELETE$' path="^$PROJ_API/projects/p1\$" status='^200$'
	kbg_running d || fail "kubectl delete returned while the finalizer was still present: $(oneline "$W/d.out") $(oneline "$W/d.err")"
	[[ -n $(jp g2 project/p1 '{.metadata.deletionTimestamp}') ]] ||
		fail "deletionTimestamp not set while the finalizer blocks deletion"
	expect_eq "generation while deleting" "$(jp g3 project/p1 '{.metadata.generation}')" "$((gen0 + 1))"
	kbg_running d || fail "kubectl delete returned while the finalizer was still present"

	kok f patch project p1 --type=merge -p '{"metadata":{"finalizers":null}}'
	poll 15 kbg_done d || fail "kubectl delete still waiting 15 s after the finalizer was removed"
	expect_eq "kubectl delete exit code" "$(cat "$W/d.rc")" 0
	expect_out d 'project.resourcemanager.miloapis.com "p1" deleted'
	[[ -s $W/d.err ]] && fail "kubectl delete wrote to stderr: $(oneline "$W/d.err")"
	kerr gone get project p1
	expect_err_has gone 'projects.resourcemanager.miloapis.com "p1" not found'
}

check_K13() { # get -w: one header, a row per change
	start_sim
	watch_rows
}

# watch_rows: K13's body, against the kubesim at $S.
watch_rows() {
	cm_yaml cm0 default a=1 | write cm0.yaml
	cm_yaml w1 default a=1 | write w1.yaml
	kok c0 create -f "$W/cm0.yaml"
	mark
	kbg w "$S" get cm -w
	poll 10 have_req "$MARK" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' query='watch=true' ||
		fail "kubectl get -w opened no watch within 10 s; stderr: $(oneline "$W/w.err")"
	expect_req "list before the watch" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' query='^limit=500$' status='^200$'
	expect_req "watch from the list's RV" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' \
		query='^resourceVersion=[0-9]+&watch=true$' status='^200$'
	kok c1 create -f "$W/w1.yaml"
	kok l label cm w1 x=y
	kok d delete cm w1
	poll 10 lines_at_least w '^w1 ' 3 || fail "kubectl get -w printed $(grep -c '^w1 ' "$W/w.out") rows for w1 (want 3: create, label, delete): $(oneline "$W/w.out")"
	kbg_stop w
	[[ -s $W/w.err ]] && fail "kubectl get -w wrote to stderr: $(oneline "$W/w.err")"
	[[ $(grep -c '^NAME ' "$W/w.out") == 1 ]] ||
		fail "header printed $(grep -c '^NAME ' "$W/w.out") times: $(oneline "$W/w.out")"
	head -n 1 "$W/w.out" | grep -q '^NAME ' || fail "first line is not the header: $(oneline "$W/w.out")"
	[[ $(grep -c '^cm0 ' "$W/w.out") == 1 ]] || fail "cm0 rows: $(oneline "$W/w.out")"
	[[ $(wc -l < "$W/w.out") == 5 ]] ||
		fail "expected 5 lines (header, cm0, 3 x w1), got: $(oneline "$W/w.out")"
}

check_K14() { # get NAME -w -o name: the synthetic ADDED is consumed
	start_sim
	cm_yaml cm1 default a=1 | write cm.yaml
	kok c create -f "$W/cm.yaml"
	mark
	kbg w "$S" get cm cm1 -w -o name
	poll 10 have_req "$MARK" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' query='watch=true' ||
		fail "kubectl get cm1 -w opened no watch within 10 s; stderr: $(oneline "$W/w.err")"
	expect_req "GET of cm1" method='^GET$' path='^/api/v1/namespaces/default/configmaps/cm1$' status='^200$'
	expect_req "watch with resourceVersion=0 on cm1" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' \
		query='fieldSelector=metadata\.name%3Dcm1' query='resourceVersion=0(&|$)' query='watch=true' status='^200$'
	# Three quiet seconds: nothing more may be printed. (An absence cannot
	# be polled for.)
	sleep 3
	kbg_running w || fail "kubectl get -w exited early: $(oneline "$W/w.err")"
	kbg_stop w
	[[ -s $W/w.err ]] && fail "kubectl get -w wrote to stderr: $(oneline "$W/w.err")"
	expect_out w "configmap/cm1"
}

check_K15() { # --chunk-size=1 pages through five objects with continue
	start_sim
	{
		printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: k15\n'
		for i in 1 2 3 4 5; do
			echo ---
			cm_yaml "c$i" k15 "a=$i"
		done
	} | write objs.yaml
	kok c create -f "$W/objs.yaml"
	mark
	kok l get cm -n k15 --chunk-size=1 -o name
	# Five list requests for five objects: the first page, then four that
	# carry the previous page's continue token (the fifth page has none, so
	# kubectl stops there).
	expect_out l "$(printf 'configmap/c%s\n' 1 2 3 4 5)"
	local lists conts
	lists=$(count_req "$MARK" method='^GET$' path='^/api/v1/namespaces/k15/configmaps$')
	conts=$(count_req "$MARK" method='^GET$' path='^/api/v1/namespaces/k15/configmaps$' query='(^|&)continue=[^&]+' query='(^|&)limit=1(&|$)' status='^200$')
	[[ $lists == 5 ]] || fail "expected 5 list requests for 5 objects with --chunk-size=1, got $lists"
	expect_req "first page" method='^GET$' path='^/api/v1/namespaces/k15/configmaps$' query='^limit=1$' status='^200$'
	[[ $conts == 4 ]] || fail "expected the 4 pages after the first to send continue (&limit=1), got $conts"
}

check_K16() { # label and field selectors
	start_sim
	{
		cm_yaml cm1 default a=1 '{app: a}'
		echo ---
		cm_yaml cm2 default a=1 '{app: b, x: "1"}'
		echo ---
		cm_yaml cm3 default a=1 '{app: c}'
		echo ---
		cm_yaml cm4 default a=1 '{x: "y"}'
		echo ---
		cm_yaml cm5 default a=1
	} | write objs.yaml
	kok c create -f "$W/objs.yaml"
	mark
	kok s1 get cm -o name -l 'app in (a,b),!x'
	expect_out s1 "configmap/cm1"
	expect_req "labelSelector list" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' \
		query='labelSelector=app\+in\+%28a%2Cb%29%2C%21x' status='^200$'
	kok s2 get cm -o name -l 'x!=y'
	expect_out s2 "$(printf 'configmap/%s\n' cm1 cm2 cm3 cm5)"
	kok s3 get cm -o name --field-selector metadata.name=cm1
	expect_out s3 "configmap/cm1"
	expect_req "fieldSelector list" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' \
		query='fieldSelector=metadata\.name%3Dcm1' status='^200$'
	mark
	kerr s4 get cm -o name --field-selector spec.foo=1
	expect_err_has s4 'field label not supported: spec.foo'
	expect_req "400 for an unsupported field" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' \
		query='fieldSelector=spec\.foo%3D1' status='^400$'
}

check_K17() { # generator commands: protobuf bodies
	start_sim
	local pb='^application/vnd\.kubernetes\.protobuf'
	mark
	kok c create configmap c --from-literal=a=1 --from-literal=b=two
	expect_out c "configmap/c created"
	expect_req "protobuf POST of the ConfigMap" method='^POST$' path='^/api/v1/namespaces/default/configmaps$' \
		content_type="$pb" query='fieldManager=kubectl-create' query='fieldValidation=Strict' status='^201$'
	kok s create secret generic s --from-literal=p=x
	expect_out s "secret/s created"
	expect_req "protobuf POST of the Secret" method='^POST$' path='^/api/v1/namespaces/default/secrets$' \
		content_type="$pb" query='fieldManager=kubectl-create' query='fieldValidation=Strict' status='^201$'
	kok n create ns n1
	expect_out n "namespace/n1 created"
	expect_req "protobuf POST of the Namespace" method='^POST$' path='^/api/v1/namespaces$' \
		content_type="$pb" query='fieldManager=kubectl-create' query='fieldValidation=Strict' status='^201$'
	kok c2 create configmap c2 -n n1 --from-literal=k=v
	expect_out c2 "configmap/c2 created"
	expect_req "protobuf POST into n1" method='^POST$' path='^/api/v1/namespaces/n1/configmaps$' \
		content_type="$pb" status='^201$'

	expect_eq "cm c .data.a" "$(jp g1 cm/c '{.data.a}')" 1
	expect_eq "cm c .data.b" "$(jp g2 cm/c '{.data.b}')" two
	# gogo-protobuf's empty generateName is unset (§4.7); uid and
	# creationTimestamp are the server's.
	[[ $(jp g3 cm/c '{.metadata.generateName}|{.metadata.uid}|{.metadata.creationTimestamp}') =~ ^\|[0-9a-f-]{36}\|20[0-9-]{8}T[0-9:]{8}Z$ ]] ||
		fail "cm c metadata (generateName|uid|creationTimestamp): '$(out g3)'"
	expect_eq "secret s .type .data.p" "$(jp g4 secret/s '{.type} {.data.p}')" "Opaque eA=="
	expect_eq "namespace n1 phase" "$(jp g5 ns/n1 '{.status.phase}')" Active
	expect_eq "cm c2 in n1 .data.k" "$(jp g6 cm/c2 '{.data.k}' -n n1)" v
}

check_K18() { # diff: rc 1 with a diff, nothing persisted
	start_sim
	make_project p1
	local rv0 list0 rc
	rv0=$(jp g0 project/p1 '{.metadata.resourceVersion}')
	list0=$(list_rv "$S$PROJ_API/projects") || fail "cannot list projects"
	project_yaml p1 org2 | write edited.yaml
	mark
	krun d diff -f "$W/edited.yaml"
	rc=$?
	expect_eq "kubectl diff exit code" "$rc" 1
	[[ -s $W/d.err ]] && fail "kubectl diff wrote to stderr: $(oneline "$W/d.err")"
	if ! grep -q '^-    name: org1$' "$W/d.out" || ! grep -q '^+    name: org2$' "$W/d.out"; then
		fail "kubectl diff does not show ownerRef.name org1 -> org2: $(oneline "$W/d.out")"
	fi
	expect_req "GET of the object" method='^GET$' path="^$PROJ_API/projects/p1\$" status='^200$'
	expect_req "dry-run merge PATCH" method='^PATCH$' path="^$PROJ_API/projects/p1\$" \
		content_type='^application/merge-patch\+json' query='dryRun=All' \
		query='fieldManager=kubectl-client-side-apply' status='^200$'
	expect_no_req "PATCH without dryRun=All" method='^PATCH$' query='^((?!dryRun=All).)*$'
	expect_no_req "other write" method='^(PUT|POST|DELETE)$'
	expect_eq "resourceVersion after diff" "$(jp g1 project/p1 '{.metadata.resourceVersion}')" "$rv0"
	expect_eq "spec.ownerRef.name after diff" "$(jp g2 project/p1 '{.spec.ownerRef.name}')" org1
	expect_eq "generation after diff" "$(jp g3 project/p1 '{.metadata.generation}')" 1
	expect_eq "projects list RV after diff" "$(list_rv "$S$PROJ_API/projects")" "$list0"
}

check_K19() { # apply --server-side: 415, kubectl's clean error
	start_sim
	cm_yaml cm1 default a=1 | write cm.yaml
	local rc
	mark
	krun a apply --server-side -f "$W/cm.yaml"
	rc=$?
	expect_eq "kubectl apply --server-side exit code" "$rc" 1
	expect_err_has a 'Server-side apply not available on the server'
	expect_req "apply PATCH answered 415" method='^PATCH$' path='^/api/v1/namespaces/default/configmaps/cm1$' \
		content_type='^application/apply-patch\+yaml' query='fieldManager=kubectl(&|$)' \
		query='fieldValidation=Strict' query='force=false' status='^415$'
	expect_no_req "successful write" method='^(PATCH|PUT|POST)$' status='^2'
	kerr g get cm cm1
	expect_err_has g 'configmaps "cm1" not found'
}

check_K20() { # 429 + Retry-After is retried; 500 without it is not
	start_sim
	cm_yaml cm1 default a=1 | write cm.yaml
	kok c create -f "$W/cm.yaml"

	add_fault '{"match":{"verb":"list","resource":"configmaps"},"action":{"status":429,"retry_after":1},"count":3}'
	local t0 t statuses rc
	mark
	t0=$EPOCHREALTIME
	kok l get cm
	t=$(elapsed_since "$t0")
	grep -q '^cm1 ' "$W/l.out" || fail "kubectl get cm printed no row for cm1: $(oneline "$W/l.out")"
	statuses=$(reqs "$MARK" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' | cut -f6 | tr '\n' ' ')
	expect_eq "statuses of the configmaps lists" "$statuses" "429 429 429 200 "
	awk -v t="$t" 'BEGIN { exit !(t >= 3.0) }' ||
		fail "kubectl get cm took ${t}s through three 429s with Retry-After: 1 (want >= 3 s)"
	note "three 429s: kubectl get cm took ${t}s"
	clear_faults

	add_fault '{"match":{"verb":"list","resource":"configmaps"},"action":{"status":500},"count":1}'
	mark
	krun e get cm
	rc=$?
	expect_eq "kubectl get cm exit code after a 500" "$rc" 1
	expect_err_has e 'Error from server (InternalError)'
	statuses=$(reqs "$MARK" method='^GET$' path='^/api/v1/namespaces/default/configmaps$' | cut -f6 | tr '\n' ' ')
	expect_eq "statuses of the configmaps lists (no retry without Retry-After)" "$statuses" "500 "
	clear_faults
}

# coll_seq PATH: kubectl's requests on the collection PATH since MARK, one
# per line as "list|watch rv=RV [limit=N] STATUS".
coll_seq() {
	reqs "$MARK" method='^GET$' path="^$1\$" | awk -F'\t' '{
		kind = "list"; rv = "-"; lim = ""
		n = split($5, a, "&")
		for (i = 1; i <= n; i++) {
			if (a[i] == "watch=true") kind = "watch"
			else if (a[i] ~ /^resourceVersion=/) rv = substr(a[i], 17)
			else if (a[i] ~ /^limit=/) lim = " " a[i]
		}
		print kind " rv=" rv lim " " $6
	}'
}

watches_at_least() { # watches_at_least PATH N
	[[ $(count_req "$MARK" method='^GET$' path="^$1\$" query='(^|&)watch=true(&|$)') -ge $2 ]]
}

check_K21() { # watches expire during kubectl wait: relist from the last RV
	start_sim
	make_project p1
	# The first watch with a resourceVersion expires with an ERROR event,
	# the second with HTTP 410; the third is left alone.
	add_fault '{"match":{"verb":"watch","resource":"projects"},"action":{"watch":"expire","form":"event"},"count":1}'
	add_fault '{"match":{"verb":"watch","resource":"projects"},"action":{"watch":"expire","form":"http"},"count":1}'
	mark
	kbg w "$S" wait --for=condition=Ready project/p1 "--timeout=$((20 * SCALE))s"
	poll 15 watches_at_least "$PROJ_API/projects" 3 ||
		fail "kubectl wait opened $(count_req "$MARK" query='watch=true') watches within 15 s (want 3: two expired, one kept); stderr: $(oneline "$W/w.err")"
	kbg_running w || fail "kubectl wait ended before the condition was written: $(oneline "$W/w.err")"
	kok s patch project p1 --subresource=status --type=merge -p "$ready_status"
	poll 15 kbg_done w || fail "kubectl wait did not return within 15 s of the status write"
	expect_eq "kubectl wait exit code" "$(cat "$W/w.rc")" 0
	expect_out w "project.resourcemanager.miloapis.com/p1 condition met"
	[[ -s $W/w.err ]] && fail "kubectl wait wrote to stderr: $(oneline "$W/w.err")"

	local got rv want
	got=$(coll_seq "$PROJ_API/projects")
	rv=$(awk '$1 == "watch" { sub(/^rv=/, "", $2); print $2; exit }' <<< "$got")
	[[ $rv =~ ^[0-9]+$ ]] || fail "no watch with a numeric resourceVersion: [$(tr '\n' ';' <<< "$got")]"
	# list (RV=0) -> watch -> expired (event) -> list RV=<last> -> watch ->
	# expired (410) -> list RV=<last> -> watch.
	want=$(printf '%s\n' "list rv=0 limit=500 200" "watch rv=$rv 200" "list rv=$rv 200" \
		"watch rv=$rv 410" "list rv=$rv 200" "watch rv=$rv 200")
	[[ $got == "$want" ]] ||
		fail "requests on projects: expected [$(tr '\n' ';' <<< "$want")] got [$(tr '\n' ';' <<< "$got")]"
	clear_faults
}

check_K22() { # a project plane: namespaces, api-resources, unknown project
	start_sim
	make_project p1
	local P=$S$PROJ_API/projects/p1/control-plane
	mark
	kok_at n "$P" get ns -o name
	expect_out n "$(printf 'namespace/%s\n' default milo-system)"
	expect_req "namespace list in plane p1" plane='^p1$' method='^GET$' \
		path="^$PROJ_API/projects/p1/control-plane/api/v1/namespaces\$" status='^200$'
	mark
	kok_at a "$P" api-resources
	expect_api_rows a "$PLANE_ROWS" "project plane"
	expect_req "discovery under the prefix" plane='^p1$' method='^GET$' \
		path="^$PROJ_API/projects/p1/control-plane/apis\$" status='^200$'
	# Projects are not served under a project prefix.
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$P$PROJ_API/projects")
	expect_eq "HTTP status of projects under a project prefix" "$code" 404

	local NOPE=$S$PROJ_API/projects/nope/control-plane
	mark
	kerr_at x "$NOPE" get cm
	expect_err_has x 'NotFound'
	expect_req "404 for an unknown project" method='^GET$' path="^$PROJ_API/projects/nope/control-plane/" status='^404$'
	expect_no_req "success for an unknown project" path="^$PROJ_API/projects/nope/" status='^2'
}

check_K23() { # planes are isolated, each with its own RV counter
	start_sim
	make_project p1
	make_project p2
	local P1=$S$PROJ_API/projects/p1/control-plane
	local P2=$S$PROJ_API/projects/p2/control-plane
	local root0 p10 p20 root1 p11 p21
	root0=$(list_rv "$S/api/v1/namespaces") || fail "cannot list root namespaces"
	p10=$(list_rv "$P1/api/v1/namespaces") || fail "cannot list p1 namespaces"
	p20=$(list_rv "$P2/api/v1/namespaces") || fail "cannot list p2 namespaces"

	cm_yaml iso1 default a=p1 | write cm.yaml
	mark
	kok_at c "$P1" create -f "$W/cm.yaml"
	expect_out c "configmap/iso1 created"
	expect_req "create in plane p1" plane='^p1$' method='^POST$' \
		path="^$PROJ_API/projects/p1/control-plane/api/v1/namespaces/default/configmaps\$" status='^201$'
	expect_eq "iso1 through p1" "$(kok_at g1 "$P1" get cm iso1 -o 'jsonpath={.data.a}'; out g1)" p1
	kerr r get cm iso1
	expect_err_has r 'configmaps "iso1" not found'
	kerr_at o "$P2" get cm iso1
	expect_err_has o 'configmaps "iso1" not found'

	root1=$(list_rv "$S/api/v1/namespaces")
	p11=$(list_rv "$P1/api/v1/namespaces")
	p21=$(list_rv "$P2/api/v1/namespaces")
	expect_eq "root RV after a write in p1" "$root1" "$root0"
	expect_eq "p2 RV after a write in p1" "$p21" "$p20"
	expect_eq "p1 RV after one write in p1" "$p11" "$((p10 + 1))"

	# The same name in another plane is a different object.
	cm_yaml iso1 default a=p2 | write cm2.yaml
	kok_at c2 "$P2" create -f "$W/cm2.yaml"
	expect_eq "iso1 through p2" "$(kok_at g2 "$P2" get cm iso1 -o 'jsonpath={.data.a}'; out g2)" p2
	expect_eq "iso1 through p1 after p2's create" "$(kok_at g3 "$P1" get cm iso1 -o 'jsonpath={.data.a}'; out g3)" p1
	expect_eq "root RV after writes in p1 and p2" "$(list_rv "$S/api/v1/namespaces")" "$root0"
}

check_K24() { # --discovery legacy --table off: K2, K3, K13 still pass
	local flags=(--discovery legacy --table off)
	# K2's rows.
	start_sim "${flags[@]}"
	mark
	kok r api-resources
	expect_api_rows r "$ROOT_ROWS" "--discovery legacy --table off"
	expect_legacy_discovery

	# K5 without Table: NAME and AGE only.
	make_project p1
	{
		cm_yaml c1 default a=1
		echo ---
		lease_yaml l1 kube-system holder-1
	} | write objs.yaml
	kok c create -f "$W/objs.yaml"
	mark
	kok p get projects
	expect_table p 'NAME AGE' p1
	kok a get cm -A
	expect_table a 'NAMESPACE NAME AGE' 'default c1'
	kok l get lease -n kube-system
	expect_table l 'NAME AGE' l1
	expect_req "Table still asked for" method='^GET$' path='^/api/v1/configmaps$' accept='as=Table' status='^200$'

	start_sim "${flags[@]}"
	apply_thrice
	start_sim "${flags[@]}"
	watch_rows
}

check_EVENTS() { # describe shows the object's Events (involvedObject selectors)
	start_sim
	{
		cm_yaml x1 default a=1
		echo ---
		cm_yaml x2 default a=1
	} | write cms.yaml
	kok c create -f "$W/cms.yaml"
	local uid1 uid2 now
	uid1=$(jp u1 cm/x1 '{.metadata.uid}')
	uid2=$(jp u2 cm/x2 '{.metadata.uid}')
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	event_yaml() { # event_yaml NAME OBJECT UID TYPE REASON MESSAGE
		cat << EOF
apiVersion: v1
kind: Event
metadata:
  name: $1
  namespace: default
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: $2
  namespace: default
  uid: $3
type: $4
reason: $5
message: $6
source:
  component: kubectl-test
firstTimestamp: "$now"
lastTimestamp: "$now"
count: 1
EOF
	}
	{
		event_yaml x1.e1 x1 "$uid1" Normal Tested "hello x1"
		echo ---
		event_yaml x2.e1 x2 "$uid2" Warning Other "about x2"
	} | write events.yaml
	mark
	kok e create -f "$W/events.yaml"
	expect_out e "$(printf 'event/%s created\n' x1.e1 x2.e1)"
	[[ $(count_req "$MARK" method='^POST$' path='^/api/v1/namespaces/default/events$' status='^201$') == 2 ]] ||
		fail "expected 2 POSTs of core v1 Events answered 201"

	mark
	kok d describe configmap x1
	grep -q '^Name: *x1$' "$W/d.out" || fail "describe shows no 'Name: x1': $(oneline "$W/d.out")"
	sed -n '/^Events:/,$p' "$W/d.out" > "$W/d.events"
	[[ $(head -n 1 "$W/d.events") =~ ^Events:\ *$ ]] ||
		fail "describe shows no Events table: $(oneline "$W/d.events")"
	grep -Eq '^  Normal +Tested +[0-9]+[smh] +kubectl-test +hello x1$' "$W/d.events" ||
		fail "describe's Events lack x1's event: $(oneline "$W/d.events")"
	grep -q 'about x2' "$W/d.events" && fail "describe x1 shows x2's event: $(oneline "$W/d.events")"
	expect_req "events list by involvedObject" method='^GET$' path='^/api/v1/namespaces/default/events$' \
		query='fieldSelector=' query='involvedObject\.name%3Dx1(%2C|&|$)' query="involvedObject\\.uid%3D$uid1" status='^200$'
	kok d2 describe configmap x2
	grep -Eq '^  Warning +Other +[0-9]+[smh] +kubectl-test +about x2$' "$W/d2.out" ||
		fail "describe x2's Events lack x2's event: $(oneline "$W/d2.out")"
	grep -q 'hello x1' "$W/d2.out" && fail "describe x2 shows x1's event"
	return 0
}

check_NSDEL() { # delete namespace: contents go; a finalizer holds it Terminating
	start_sim
	{
		ns_yaml gone1
		echo ---
		cm_yaml inside gone1 a=1
		echo ---
		ns_yaml held
		echo ---
		cm_yaml plain held a=1
		echo ---
		cat << 'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: blocker
  namespace: held
  finalizers: [example.com/hold]
data: {a: "1"}
EOF
	} | write objs.yaml
	kok c create -f "$W/objs.yaml"

	mark
	kok d1 delete namespace gone1 "--timeout=$((15 * SCALE))s"
	expect_out d1 'namespace "gone1" deleted'
	expect_req "DELETE of the namespace" method='^DELETE$' path='^/api/v1/namespaces/gone1$' status='^200$'
	kerr g1 get ns gone1
	expect_err_has g1 'namespaces "gone1" not found'
	# (kubectl reports a 404 in a missing namespace as the namespace's
	# NotFound, so the object's own 404 is read from the request log.)
	mark
	kerr g2 get cm inside -n gone1
	expect_err_has g2 'NotFound'
	expect_req "404 for the ConfigMap that was in the namespace" method='^GET$' \
		path='^/api/v1/namespaces/gone1/configmaps/inside$' status='^404$'

	mark
	kbg d2 "$S" delete namespace held "--timeout=$((20 * SCALE))s"
	poll 10 have_req "$MARK" method='^GET$' path='^/api/v1/namespaces$' query='fieldSelector=metadata\.name%3Dheld' query='watch=true' ||
		fail "kubectl delete ns did not start waiting (no watch on namespaces) within 10 s; stderr: $(oneline "$W/d2.err")"
	expect_req "DELETE of the namespace" method='^DELETE$' path='^/api/v1/namespaces/held$' status='^200$'
	poll 10 gone "$S/api/v1/namespaces/held/configmaps/plain" ||
		fail "configmap plain still exists 10 s into the deletion of its namespace"
	kbg_running d2 || fail "kubectl delete ns returned while a finalizer blocks a ConfigMap in it: $(oneline "$W/d2.out") $(oneline "$W/d2.err")"
	expect_eq "namespace phase while blocked" "$(jp g3 ns/held '{.status.phase}')" Terminating
	[[ -n $(jp g4 ns/held '{.metadata.deletionTimestamp}') ]] ||
		fail "the namespace has no deletionTimestamp while terminating"
	[[ -n $(jp g5 cm/blocker '{.metadata.deletionTimestamp}' -n held) ]] ||
		fail "the blocked ConfigMap has no deletionTimestamp"
	kbg_running d2 || fail "kubectl delete ns returned while the finalizer was still present"

	kok f patch cm blocker -n held --type=merge -p '{"metadata":{"finalizers":null}}'
	poll 15 kbg_done d2 || fail "kubectl delete ns still waiting 15 s after the finalizer was removed"
	expect_eq "kubectl delete ns exit code" "$(cat "$W/d2.rc")" 0
	expect_out d2 'namespace "held" deleted'
	[[ -s $W/d2.err ]] && fail "kubectl delete ns wrote to stderr: $(oneline "$W/d2.err")"
	kerr g6 get ns held
	expect_err_has g6 'namespaces "held" not found'
	mark
	kerr g7 get cm blocker -n held
	expect_err_has g7 'NotFound'
	expect_req "404 for the formerly blocked ConfigMap" method='^GET$' \
		path='^/api/v1/namespaces/held/configmaps/blocker$' status='^404$'
}

check_GC() { # garbage collection: a dependent follows its owner
	start_sim
	{
		cm_yaml owner default a=1
		echo ---
		cm_yaml keeper default a=1
	} | write owners.yaml
	kok c1 create -f "$W/owners.yaml"
	local uo uk
	uo=$(jp u1 cm/owner '{.metadata.uid}')
	uk=$(jp u2 cm/keeper '{.metadata.uid}')
	dep_yaml() { # dep_yaml NAME OWNER UID
		cat << EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  namespace: default
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: $2, uid: $3}
data: {a: "1"}
EOF
	}
	{
		dep_yaml dep owner "$uo"
		echo ---
		dep_yaml kept keeper "$uk"
	} | write deps.yaml
	kok c2 create -f "$W/deps.yaml"
	expect_eq "dep's owner uid" "$(jp g0 cm/dep '{.metadata.ownerReferences[0].uid}')" "$uo"

	mark
	kok d delete cm owner
	expect_out d 'configmap "owner" deleted'
	poll 10 gone "$S/api/v1/namespaces/default/configmaps/dep" ||
		fail "the dependent dep still exists 10 s after its owner was deleted"
	kerr g1 get cm dep
	expect_err_has g1 'configmaps "dep" not found'
	kok g2 get cm -o name
	expect_out g2 "$(printf 'configmap/%s\n' keeper kept)"
}

check_CRD() { # CustomResourceDefinition: established, discoverable, usable
	start_sim
	write crd.yaml << 'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wg]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
EOF
	write widget.yaml << 'EOF'
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: default
spec:
  size: 3
  color: blue
EOF
	mark
	kok a apply -f "$W/crd.yaml"
	expect_out a "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
	expect_req "POST of the CRD" method='^POST$' path='^/apis/apiextensions\.k8s\.io/v1/customresourcedefinitions$' status='^201$'
	kok w wait --for condition=established crd/widgets.example.com "--timeout=$((10 * SCALE))s"
	expect_out w "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
	expect_eq "NamesAccepted" "$(jp g0 crd/widgets.example.com '{.status.conditions[?(@.type=="NamesAccepted")].status}')" True

	kok r api-resources
	expect_api_rows r "$(LC_ALL=C sort <<< "$ROOT_ROWS"$'\nwidgets example.com/v1 true Widget')" "api-resources with a CRD"
	awk '$1 == "widgets" && $2 == "wg" { f = 1 } END { exit !f }' "$W/r.out" ||
		fail "api-resources shows no short name wg for widgets"

	mark
	kok c create -f "$W/widget.yaml"
	expect_out c "widget.example.com/w1 created"
	expect_req "OpenAPI v3 for the CRD's group-version" method='^GET$' path='^/openapi/v3/apis/example\.com/v1$' status='^200$'
	expect_req "POST of the Widget" method='^POST$' path='^/apis/example\.com/v1/namespaces/default/widgets$' \
		query='fieldManager=kubectl-create' status='^201$'
	expect_eq "widget fields" "$(jp g1 widget/w1 '{.spec.size} {.spec.color} {.metadata.generation}')" "3 blue 1"
	kok s get wg -o name
	expect_out s "widget.example.com/w1"

	# Deleting the CRD removes the resource and its objects.
	kok d delete crd widgets.example.com "--timeout=$((15 * SCALE))s"
	expect_out d 'customresourcedefinition.apiextensions.k8s.io "widgets.example.com" deleted'
	mark
	kerr x get widgets
	expect_err_has x "the server doesn't have a resource type \"widgets\""
}

check_TLS() { # HTTPS with --tls-cert/--tls-key and --kubeconfig-out
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -days 1 \
		-keyout "$W/tls.key" -out "$W/tls.crt" > "$W/openssl.log" 2>&1 ||
		fail "openssl req failed: $(oneline "$W/openssl.log")"
	start_sim --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" --kubeconfig-out "$W/kubeconfig"
	[[ $S == https://* ]] || fail "with --tls-cert kubesim listens on '$S', not https://"
	[[ -s $W/kubeconfig ]] || fail "--kubeconfig-out not written before the listening line"
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$W/tls.crt" "$S/version") ||
		fail "curl --cacert tls.crt $S/version failed: the served certificate is not ours"
	expect_eq "HTTPS /version" "$code" 200

	local kc=(timeout -k 5 "$KT" kubectl --kubeconfig "$W/kubeconfig")
	"${kc[@]}" --cache-dir "$(cachedir)" config current-context > "$W/ctx.out" 2> "$W/ctx.err" ||
		fail "kubectl config current-context: $(oneline "$W/ctx.err")"
	expect_out ctx kubesim
	"${kc[@]}" --cache-dir "$(cachedir)" config view -o 'jsonpath={.clusters[0].cluster.server}' > "$W/srv.out" 2> "$W/srv.err" ||
		fail "kubectl config view: $(oneline "$W/srv.err")"
	expect_out srv "$S"
	mark
	"${kc[@]}" --cache-dir "$(cachedir)" get ns -o name > "$W/ns.out" 2> "$W/ns.err" ||
		fail "kubectl --kubeconfig get ns failed: $(oneline "$W/ns.err")"
	[[ -s $W/ns.err ]] && fail "kubectl --kubeconfig get ns wrote to stderr: $(oneline "$W/ns.err")"
	expect_out ns "$(printf 'namespace/%s\n' default kube-node-lease kube-public kube-system)"
	expect_req "namespace list over TLS" method='^GET$' path='^/api/v1/namespaces$' status='^200$'
}

# ---------------------------------------------------------------------------
# Runner.

# After every check: all of kubectl's requests to the last kubesim came from
# kubectl 1.32 (the dispatcher picked it from /version), as §1.5 assumes.
only_kubectl_132() {
	[[ -n $S ]] || return 0
	MARK=0
	expect_no_req "request from a kubectl other than v1.32" user_agent='^kubectl/v(?!1\.32\.)'
}

PASSED=0
FAILED=0

run_check() { # run_check NAME DESCRIPTION
	local name=$1 desc=$2 dir rc t0=$EPOCHREALTIME t
	dir=$(mktemp -d "$ROOT/$name.XXXX")
	(
		W=$dir
		trap check_cleanup EXIT
		"check_$name"
		only_kubectl_132
	)
	rc=$?
	t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	if ((rc == 0)) && [[ ! -s $dir/msg ]]; then
		echo "ok $name $desc (${t}s)"
		PASSED=$((PASSED + 1))
	else
		local why="exited $rc"
		[[ -s $dir/msg ]] && why=$(head -c 2000 "$dir/msg")
		echo "FAIL $name: $why"
		[[ -s $dir/diag ]] && sed 's/^/#   /' "$dir/diag" | head -n 60
		FAILED=$((FAILED + 1))
	fi
}

run_check K1 "kubectl version pins v1.32"
run_check K2 "api-resources: nine rows, aggregated and legacy discovery"
run_check K3 "apply: created, unchanged (no PATCH), configured (SMP)"
run_check K4 "apply Project: merge patch, generation 1 -> 2"
run_check K5 "server-side Table columns for projects, cm -A, leases"
run_check K6 "strategic patch on a Project: 415, clean error"
run_check K7 "patch --type=merge and --type=json; failed test op is 422"
run_check K8 "replace with a stale object: Conflict"
run_check K9 "status subresource: conditions kept, metadata ignored"
run_check K10 "wait --for=condition=Ready: met, and timeout"
run_check K11 "wait with WatchListClient: one sendInitialEvents watch"
run_check K12 "delete waits for the finalizer"
run_check K13 "get -w: one header, a row per change"
run_check K14 "get NAME -w -o name: one line"
run_check K15 "--chunk-size=1 pages with continue"
run_check K16 "label and field selectors"
run_check K17 "create configmap/secret/namespace: protobuf bodies"
run_check K18 "diff: rc 1, nothing persisted"
run_check K19 "apply --server-side: not available"
run_check K20 "faults: 429 + Retry-After retried, 500 not"
run_check K21 "faults: watch expiry during wait, relist from the last RV"
run_check K22 "project plane: namespaces, api-resources, unknown project"
run_check K23 "project planes are isolated"
run_check K24 "--discovery legacy --table off: K2 rows, K3, K13, NAME AGE"
run_check EVENTS "describe shows the object's Events"
run_check NSDEL "delete namespace: contents removed, finalizer holds it"
run_check GC "garbage collection of a dependent"
run_check CRD "CRD: established, discovered, served, removed"
run_check TLS "HTTPS with --kubeconfig-out"

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
