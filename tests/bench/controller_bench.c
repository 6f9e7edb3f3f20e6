/*
 * controller_bench.c — benchmark of the client runtime (informer, cache,
 * work queue) and of the MyResource controller against kubesim
 * (docs/BENCHMARKS.md, "Client runtime and controller (issue 4)").
 *
 * It prints one line per metric,
 *
 *	metric value unit target PASS|FAIL|smoke
 *
 * and lines starting with "# " for information (sizes, CPU time, spreads,
 * the reason for an error).  The metrics:
 *
 *   wq_cycles_per_s   one thread doing add+get+done cycles on one
 *                     mcf_wq: batches of `wq_batch` adds of distinct keys,
 *                     then as many get+done; cycles per second (a 4-thread
 *                     figure on the same queue follows as a "#" line)
 *                                                       >= 1,000,000/s
 *   informer_events_per_cpu_s
 *                     one informer on configmaps in namespace "bench"
 *                     (its own mcf_inf_loop) whose handler adds each key
 *                     to an mcf_wq; /_sim/load creates N objects of
 *                     1 KiB; events handled divided by this process's
 *                     CPU time (getrusage RUSAGE_SELF) from the load
 *                     request to the N-th handler call.  The wall-clock
 *                     rate and the loop thread's own CPU time follow as
 *                     "#" lines                         >= 50,000/CPU-s
 *   informer_update_events_per_cpu_s
 *                     the same for N updates of those objects by
 *                     /_sim/load (queue drained in between)
 *                                                       >= 50,000/CPU-s
 *   cache_mem_ratio   bytes the informer's cache holds per object
 *                     (mallinfo2 in-use bytes, uordblks + hblkhd, plus
 *                     the bytes in use in the loop's store for texts and
 *                     entries, mcf_inf_loop_mem, with the N objects
 *                     cached after the updates, minus the same after
 *                     mcf_inf_release freed the informer; divided by the
 *                     objects cached), over the mean compact JSON size of
 *                     a cached object (json_dumps JSON_COMPACT)    <= 2.0
 *   e2e_changes_per_s MyResource spec changes reconciled per second at
 *                     full speed: M objects, K merge patches of spec.data
 *                     written round-robin by --writers threads (2) as fast
 *                     as they can; the changes a reconcile started on
 *                     exactly (not those folded into a later change of
 *                     the same object while queued) divided by the time
 *                     from the first patch to the last change seen done
 *                                                       >= 1,000/s
 *   e2e_queue_p99_ms  p99 over changes of the time from sending a patch
 *                     to a reconcile starting on its generation, while
 *                     the writers pace K changes at --rate (1,000/s).
 *                     That is the time in the work queue plus the write's
 *                     round trip, the watch delivery and the decode: an
 *                     upper bound of the queue time.  The queue's own
 *                     histogram (workqueue_queue_duration_seconds
 *                     {name="myresource"} from the default metrics
 *                     registry, client-go's decade buckets) is printed
 *                     too; if more than 1% of its observations are over
 *                     1 s, the metric is its interpolated p99 instead
 *                                                       <= 1000 ms
 *
 * The controller is mcf_myresource_controller, registered as is except
 * that its reconcile function is wrapped: the wrapper reads the object's
 * generation from the cache before calling the real reconcile, and notes
 * when a reconcile of each generation started and when one returned DONE.
 * That is how changes are counted as reconciled, and how the per-change
 * latencies ("#" lines) are measured.
 *
 * kubesim runs in its own process (ks_spawn, a fresh one for every
 * repetition of every measurement) on loopback and shares the machine's
 * cores with this process; both sides' CPU time is printed, and this
 * process's by thread (informer loop, reconcile threads, writers).
 * --pin puts this process on CPU 0 and kubesim on CPU 1, so that "one
 * core" is literal.
 *
 * --smoke runs everything at small sizes for CTest; its verdict word is
 * "smoke" (the targets are defined for the full sizes) and it exits 0 once
 * every metric was measured.  --repeat N prints medians.
 *
 * Exit codes: 0 every metric was measured (and, in a full run, met its
 * target); 1 a full run missed a target; 2 an error (usage, kubesim,
 * a failed request, a controller that did not converge).
 *
 * Threads: main drives every phase; the work-queue run starts its own
 * threads; each e2e phase starts its writer threads, each owning its
 * REST client (STYLE.md §7).  The informer and controller threads are the
 * library's.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "config.h"
#include "controller.h"
#include "err.h"
#include "flags.h"
#include "informer.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "log.h"
#include "metrics.h"
#include "myresource.h"
#include "workqueue.h"

#define UA "controller_bench/" MCF_VERSION " (bench)"
#define NAMESPACE "bench"
#define CTRL_NAME "myresource"
/* Deadlines, multiplied by MCF_TEST_TIMEOUT_SCALE. */
#define SYNC_DEADLINE_MS 30000
#define EVENTS_DEADLINE_MS 120000
#define CONVERGE_DEADLINE_MS 300000
/* Most threads this process is expected to have (for CPU accounting). */
#define MAX_TASKS 128

#ifndef CONTROLLER_BENCH_CRD
#define CONTROLLER_BENCH_CRD "deploy/crds/myresources.example.mcfleet.io.yaml"
#endif

enum exit_code {
	EXIT_PASS  = 0,
	EXIT_FAIL  = 1,
	EXIT_ERROR = 2,
};

typedef struct sizes {
	int64_t wq_cycles;   /* add+get+done cycles per run */
	int64_t wq_batch;    /* adds before the gets */
	int64_t wq_threads;  /* the multi-thread run */
	int64_t inf_events;  /* objects /_sim/load creates */
	int64_t obj_size;    /* their size */
	int64_t e2e_objects; /* MyResources */
	int64_t e2e_changes; /* spec changes per phase */
	double  e2e_rate;    /* changes/s of the paced phase */
	int64_t e2e_writers; /* writer threads */
} sizes;

static const sizes full_sizes = {
	.wq_cycles   = 2000000,
	.wq_batch    = 1000,
	.wq_threads  = 4,
	.inf_events  = 100000,
	.obj_size    = 1024,
	.e2e_objects = 1000,
	.e2e_changes = 10000,
	.e2e_rate    = 1000,
	.e2e_writers = 2,
};

static const sizes smoke_sizes = {
	.wq_cycles   = 20000,
	.wq_batch    = 100,
	.wq_threads  = 4,
	.inf_events  = 2000,
	.obj_size    = 1024,
	.e2e_objects = 20,
	.e2e_changes = 200,
	.e2e_rate    = 200,
	.e2e_writers = 2,
};

typedef struct bench {
	sizes       sz;
	bool        smoke;
	bool        pin;
	int         scale;
	const char *crd_path;
} bench;

/* --------------------------------------------------------------------- */
/* Time, CPU and memory                                                  */
/* --------------------------------------------------------------------- */

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Median of n > 0 values; sorts them. */
static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The q-quantile (0..1) of n > 0 sorted values, nearest rank. */
static double
quantile_sorted(const double *v, size_t n, double q)
{
	size_t r = (size_t) (q * (double) n + 0.999999);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

/* CPU seconds of this process (all threads). */
static double
proc_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
	    + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of another process, from /proc/PID/stat; -1 if unreadable. */
static double
pid_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n]                = '\0';
	char              *p  = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (p == NULL
	    || sscanf(p + 2,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &ut, &st)
	        != 2)
		return -1;
	return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

/* CPU time of one thread of this process in ns, from
 * /proc/self/task/TID/schedstat; -1 if unreadable. */
static int64_t
task_cpu_ns(pid_t tid)
{
	char path[64];
	snprintf(
	    path, sizeof(path), "/proc/self/task/%d/schedstat", (int) tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long long v = -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* CPU time of every thread of this process at one moment. */
typedef struct tasks {
	int     n;
	pid_t   tid[MAX_TASKS];
	int64_t ns[MAX_TASKS];
} tasks;

static void
tasks_take(tasks *t)
{
	t->n   = 0;
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && t->n < MAX_TASKS) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		pid_t   tid = (pid_t) atoi(e->d_name);
		int64_t ns  = task_cpu_ns(tid);
		if (ns < 0)
			continue;
		t->tid[t->n] = tid;
		t->ns[t->n]  = ns;
		t->n++;
	}
	closedir(d);
}

/* CPU seconds thread `tid` used between two snapshots (0 if it did not
 * exist at the end; from 0 if it did not exist at the start). */
static double
tasks_delta(const tasks *a, const tasks *b, pid_t tid)
{
	int64_t va = 0, vb = 0;
	for (int i = 0; i < a->n; i++)
		if (a->tid[i] == tid)
			va = a->ns[i];
	for (int i = 0; i < b->n; i++)
		if (b->tid[i] == tid)
			vb = b->ns[i];
	return vb > va ? (double) (vb - va) / 1e9 : 0;
}

/* Summed CPU seconds of every thread between two snapshots. */
static double
tasks_total(const tasks *a, const tasks *b)
{
	double s = 0;
	for (int i = 0; i < b->n; i++)
		s += tasks_delta(a, b, b->tid[i]);
	return s;
}

/* Bytes malloc has handed out and not taken back (every arena, plus
 * mmapped chunks). */
static double
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (double) mi.uordblks + (double) mi.hblkhd;
}

/* Puts every thread of process `pid` on `cpu`; false if that failed. */
static bool
pin_process(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	bool           ok = true;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (sched_setaffinity(
		        (pid_t) atoi(e->d_name), sizeof(set), &set)
		    != 0)
			ok = false;
	}
	closedir(d);
	return ok;
}

/* --------------------------------------------------------------------- */
/* kubesim and requests                                                  */
/* --------------------------------------------------------------------- */

/* One kubesim with a REST client on the main thread. */
typedef struct sim {
	ks_spawn       ks;
	mcf_kubeconfig kc; /* fields borrowed from ks / literals */
	mcf_kc        *c;
} sim;

static int
sim_start(sim *s, const bench *b, mcf_errinfo *ei)
{
	memset(s, 0, sizeof(*s));
	static const char *const extra[]
	    = { "--history-events", "200000", NULL };
	if (ks_spawn_start(&s->ks, extra, b->scale) != 0)
		return mcf_errinfo_set(ei, MCF_EIO,
		    "kubesim did not start (KUBESIM=%s)", getenv("KUBESIM"));
	if (b->pin && !pin_process(s->ks.pid, 1))
		printf("# warning: could not pin kubesim to CPU 1\n");
	s->kc.server    = s->ks.url;
	s->kc.namespace = (char *) "default";
	mcf_kc_opts o   = { .timeout_ms = 600000LL * b->scale };
	int         rc  = mcf_kc_create(&s->kc, UA, &o, &s->c, ei);
	if (rc != MCF_OK) {
		ks_spawn_stop(&s->ks, b->scale);
		return rc;
	}
	return MCF_OK;
}

/* Stops kubesim; an error if it had died or did not exit cleanly (unless
 * `rc` already is one). */
static int
sim_stop(sim *s, const bench *b, int rc, mcf_errinfo *ei)
{
	mcf_kc_destroy(s->c);
	s->c       = NULL;
	bool alive = s->ks.pid > 0 && kill(s->ks.pid, 0) == 0;
	int  st    = ks_spawn_stop(&s->ks, b->scale);
	if (rc == MCF_OK && (!alive || st != 0))
		rc = mcf_errinfo_set(
		    ei, MCF_EIO, "kubesim ended badly (wait status %d)", st);
	return rc;
}

/* POST `json` (text) to `path`; `*out` (may be NULL) gets the answer. */
static int
sim_post(
    sim *s, const char *path, const char *json, json_t **out, mcf_errinfo *ei)
{
	json_t *body = json_loads(json, 0, NULL);
	if (body == NULL)
		mcf_panic("bad JSON literal");
	mcf_kc_status st;
	int           rc = mcf_kc_request(s->c, "POST", path, body, out, &st);
	json_decref(body);
	if (rc != MCF_OK)
		mcf_errinfo_set(ei, rc, "POST %s: %s (HTTP %d)", path,
		    st.message, st.http_code);
	return rc;
}

/* Creates namespace NAMESPACE. */
static int
sim_namespace(sim *s, mcf_errinfo *ei)
{
	return sim_post(s, "/api/v1/namespaces",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
	    "\"name\":\"" NAMESPACE "\"}}",
	    NULL, ei);
}

/* --------------------------------------------------------------------- */
/* wq_cycles_per_s                                                       */
/* --------------------------------------------------------------------- */

#define WQ_KEY_LEN 32

typedef struct wq_run {
	mcf_wq           *q;
	const char       *keys; /* n_keys keys of WQ_KEY_LEN bytes */
	int64_t           per_thread;
	int64_t           batch;
	pthread_barrier_t start;
	atomic_int        errors;
} wq_run;

typedef struct wq_thread {
	wq_run *r;
	int64_t first; /* index of this thread's first key */
} wq_thread;

static void *
wq_thread_main(void *arg)
{
	wq_thread *t = arg;
	wq_run    *r = t->r;
	pthread_barrier_wait(&r->start);
	for (int64_t done = 0; done < r->per_thread;) {
		int64_t n = r->per_thread - done < r->batch
		    ? r->per_thread - done
		    : r->batch;
		for (int64_t i = 0; i < n; i++)
			if (mcf_wq_add(r->q,
			        r->keys + (t->first + done + i) * WQ_KEY_LEN)
			    != MCF_OK)
				atomic_fetch_add(&r->errors, 1);
		for (int64_t i = 0; i < n; i++) {
			const char *k;
			if (mcf_wq_get(r->q, -1, &k) != MCF_OK
			    || mcf_wq_done(r->q, k) != MCF_OK)
				atomic_fetch_add(&r->errors, 1);
		}
		done += n;
	}
	return NULL;
}

/* Cycles per second of `threads` threads on one queue.  Every cycle's key
 * is distinct (so no add is folded into a queued key and the gets always
 * match the adds), and goes through the queue's dedup set all the same. */
static int
measure_wq(const bench *b, int threads, double *rate, mcf_errinfo *ei)
{
	int64_t total = b->sz.wq_cycles;
	int64_t per   = total / threads;
	total         = per * threads;
	char *keys    = mcf_malloc((size_t) total * WQ_KEY_LEN);
	for (int64_t i = 0; i < total; i++)
		snprintf(keys + i * WQ_KEY_LEN, WQ_KEY_LEN,
		    NAMESPACE "/obj-%012lld", (long long) i);
	wq_run r
	    = { .keys = keys, .per_thread = per, .batch = b->sz.wq_batch };
	mcf_wq_opts o;
	mcf_wq_opts_init(&o);
	o.name = "bench";
	if (mcf_wq_create(&r.q, &o) != MCF_OK)
		mcf_panic("mcf_wq_create");
	pthread_barrier_init(&r.start, NULL, (unsigned) threads + 1);
	wq_thread *ts  = mcf_calloc((size_t) threads, sizeof(*ts));
	pthread_t *tid = mcf_calloc((size_t) threads, sizeof(*tid));
	for (int i = 0; i < threads; i++) {
		ts[i] = (wq_thread) { &r, per * i };
		if (pthread_create(&tid[i], NULL, wq_thread_main, &ts[i]) != 0)
			mcf_panic("pthread_create");
	}
	double cpu0 = proc_cpu_s();
	pthread_barrier_wait(&r.start);
	int64_t t0 = now_ns();
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	int64_t t1   = now_ns();
	double  cpu1 = proc_cpu_s();
	double  wall = (double) (t1 - t0) / 1e9;
	*rate        = (double) total / wall;
	mcf_wq_metrics m;
	mcf_wq_metrics_read(r.q, &m);
	printf("# wq %d thread%s: %lld cycles (batches of %lld) in %.3f s, "
	       "%.0f cycles/s; CPU %.2f s (%.0f%% of a core), %.0f cycles "
	       "per CPU-second; adds_total %llu, depth %lld at the end\n",
	    threads, threads == 1 ? "" : "s", (long long) total,
	    (long long) b->sz.wq_batch, wall, *rate, cpu1 - cpu0,
	    100 * (cpu1 - cpu0) / wall, (double) total / (cpu1 - cpu0),
	    (unsigned long long) m.adds_total, (long long) m.depth);
	int rc = MCF_OK;
	if (atomic_load(&r.errors) != 0 || m.adds_total != (uint64_t) total
	    || m.depth != 0)
		rc = mcf_errinfo_set(ei, MCF_EINTERNAL,
		    "work queue: %d failed calls, %llu adds for %lld cycles",
		    atomic_load(&r.errors), (unsigned long long) m.adds_total,
		    (long long) total);
	pthread_barrier_destroy(&r.start);
	mcf_wq_destroy(r.q);
	free(ts);
	free(tid);
	free(keys);
	return rc;
}

/* --------------------------------------------------------------------- */
/* informer_events_per_cpu_s and cache_mem_ratio                         */
/* --------------------------------------------------------------------- */

typedef struct inf_run {
	mcf_wq      *q;
	int64_t      target;   /* events wanted */
	atomic_llong events;   /* events handled (not initial adds) */
	atomic_llong t_last;   /* now_ns() of the target-th event */
	atomic_int   loop_tid; /* the informer loop thread */
	atomic_int   initial;  /* initial adds seen */
} inf_run;

static void
inf_count(inf_run *r, const json_t *obj)
{
	const json_t *md = json_object_get(obj, "metadata");
	const char   *ns = json_string_value(json_object_get(md, "namespace"));
	const char   *name = json_string_value(json_object_get(md, "name"));
	char          key[512];
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name ? name : "");
	mcf_wq_add(r->q, key);
	long long n = atomic_fetch_add(&r->events, 1) + 1;
	if (n == r->target)
		atomic_store(&r->t_last, now_ns());
}

static void
inf_on_add(void *arg, const json_t *obj, bool initial)
{
	inf_run *r = arg;
	if (atomic_load_explicit(&r->loop_tid, memory_order_relaxed) == 0)
		atomic_store(&r->loop_tid, (int) gettid());
	if (initial)
		atomic_fetch_add(&r->initial, 1);
	else
		inf_count(r, obj);
}

static void
inf_on_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	(void) old_obj;
	inf_count(arg, new_obj);
}

static void
inf_on_delete(void *arg, const json_t *obj)
{
	inf_count(arg, obj);
}

typedef struct inf_phase {
	double ev_per_cpu;  /* events per CPU-second of this process */
	double ev_per_s;    /* wall clock */
	double ev_per_loop; /* events per CPU-second of the loop thread */
} inf_phase;

typedef struct inf_result {
	inf_phase create;    /* informer_events_per_cpu_s */
	inf_phase update;    /* informer_update_events_per_cpu_s */
	double    mem_ratio; /* cache bytes per object / JSON bytes */
	double    bytes_obj; /* cache bytes per object */
	double    json_obj;  /* JSON bytes per object */
} inf_result;

/* One ingest phase: /_sim/load performs r->target writes `op` ("create"
 * or "update") of 1 KiB objects in NAMESPACE, and the informer's handler
 * counts the events; then the queue is drained. */
static int
measure_ingest(const bench *b, sim *s, mcf_inf *inf, inf_run *r, pid_t ltid,
    const char *op, inf_phase *res, mcf_errinfo *ei)
{
	atomic_store(&r->events, 0);
	atomic_store(&r->t_last, 0);
	double  cpu0  = proc_cpu_s();
	int64_t loop0 = task_cpu_ns(ltid);
	double  ks0   = pid_cpu_s(s->ks.pid);
	int64_t t0    = now_ns();
	char    body[256];
	snprintf(body, sizeof(body),
	    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\",\"resource\":"
	    "\"configmaps\",\"namespace\":\"" NAMESPACE "\",\"op\":\"%s\","
	    "\"count\":%lld,\"size\":%lld}",
	    op, (long long) b->sz.inf_events, (long long) b->sz.obj_size);
	json_t *ans    = NULL;
	int     rc     = sim_post(s, "/_sim/load", body, &ans, ei);
	int64_t t_load = now_ns();
	double  ks_s   = json_real_value(json_object_get(ans, "seconds"))
	    + (double) json_integer_value(json_object_get(ans, "seconds"));
	long long ks_count = json_integer_value(json_object_get(ans, "count"));
	json_decref(ans);
	if (rc == MCF_OK && ks_count != b->sz.inf_events)
		rc = mcf_errinfo_set(ei, MCF_EPROTO,
		    "/_sim/load (%s) wrote %lld objects, not %lld", op,
		    ks_count, (long long) b->sz.inf_events);
	int64_t deadline
	    = now_ns() + (int64_t) EVENTS_DEADLINE_MS * b->scale * 1000000;
	while (rc == MCF_OK && atomic_load(&r->events) < r->target) {
		if (now_ns() > deadline) {
			mcf_inf_stats st;
			mcf_inf_get_stats(inf, &st);
			rc = mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			    "%s: %lld of %lld events after %d ms (informer: "
			    "%s)",
			    op, (long long) atomic_load(&r->events),
			    (long long) r->target,
			    EVENTS_DEADLINE_MS * b->scale, st.last_error);
		}
		sleep_ms(1);
	}
	if (rc != MCF_OK)
		return rc;
	int64_t t_end    = atomic_load(&r->t_last);
	double  cpu1     = proc_cpu_s();
	int64_t loop1    = task_cpu_ns(ltid);
	double  ks1      = pid_cpu_s(s->ks.pid);
	double  wall     = (double) (t_end - t0) / 1e9;
	double  n        = (double) r->target;
	res->ev_per_s    = n / wall;
	res->ev_per_cpu  = n / (cpu1 - cpu0);
	res->ev_per_loop = n / ((double) (loop1 - loop0) / 1e9);
	printf("# informer %s: %lld events of %lld B objects in %.3f s from "
	       "the load request to the last handler call (%.0f events/s); "
	       "kubesim's load took %.3f s (%.0f writes/s), the request "
	       "%.3f s\n",
	    op, (long long) r->target, (long long) b->sz.obj_size, wall,
	    res->ev_per_s, ks_s, n / ks_s, (double) (t_load - t0) / 1e9);
	printf("# informer %s CPU: this process %.3f s (%.0f%% of a core), "
	       "of which the informer loop thread %.3f s -> %.0f events per "
	       "loop-thread CPU-second; kubesim %.2f s (%.0f%%)\n",
	    op, cpu1 - cpu0, 100 * (cpu1 - cpu0) / wall,
	    (double) (loop1 - loop0) / 1e9, res->ev_per_loop, ks1 - ks0,
	    100 * (ks1 - ks0) / wall);
	/* Empty the queue (the keys are not part of the cache). */
	for (int64_t i = 0; i < r->target; i++) {
		const char *k;
		if (mcf_wq_get(r->q, 0, &k) != MCF_OK)
			return mcf_errinfo_set(ei, MCF_EINTERNAL,
			    "the queue holds %lld keys, not %lld",
			    (long long) i, (long long) r->target);
		mcf_wq_done(r->q, k);
	}
	return MCF_OK;
}

static int
measure_informer(const bench *b, inf_result *res, mcf_errinfo *ei)
{
	sim s;
	int rc = sim_start(&s, b, ei);
	if (rc != MCF_OK)
		return rc;
	mcf_inf_loop *loop = NULL;
	mcf_inf      *inf  = NULL;
	uint64_t      hid  = 0;
	inf_run       r    = { .target = b->sz.inf_events };
	mcf_wq_opts   o;
	mcf_wq_opts_init(&o);
	o.name = "informer-bench";
	if (mcf_wq_create(&r.q, &o) != MCF_OK)
		mcf_panic("mcf_wq_create");

	/* One object before the informer starts: its initial add tells
	 * which thread is the loop's. */
	rc = sim_namespace(&s, ei);
	if (rc == MCF_OK)
		rc = sim_post(&s,
		    "/api/v1/namespaces/" NAMESPACE "/configmaps",
		    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
		    "\"metadata\":"
		    "{\"name\":\"probe\"},\"data\":{\"k\":\"v\"}}",
		    NULL, ei);
	if (rc == MCF_OK)
		rc = mcf_inf_loop_create(&loop, ei);
	if (rc == MCF_OK) {
		mcf_inf_config cfg = {
			.cluster    = "",
			.kc         = &s.kc,
			.user_agent = UA,
			.version    = "v1",
			.resource   = "configmaps",
			.namespace  = NAMESPACE,
		};
		rc = mcf_inf_acquire(loop, &cfg, &inf, ei);
	}
	if (rc == MCF_OK) {
		/* The handler of a For-style controller: the key of the new
		 * state only (no want_old). */
		mcf_inf_handler h = { .on_add = inf_on_add,
			.on_update            = inf_on_update,
			.on_delete            = inf_on_delete,
			.arg                  = &r };
		mcf_inf_add_handler(inf, &h, &hid);
		if (mcf_inf_wait_synced(
		        inf, (int64_t) SYNC_DEADLINE_MS * b->scale)
		    != MCF_OK)
			rc = mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			    "the informer did not sync within %d ms",
			    SYNC_DEADLINE_MS * b->scale);
	}
	int64_t deadline
	    = now_ns() + (int64_t) SYNC_DEADLINE_MS * b->scale * 1000000;
	while (rc == MCF_OK && atomic_load(&r.initial) < 1) {
		if (now_ns() > deadline)
			rc = mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			    "no initial add of the probe object");
		sleep_ms(1);
	}
	if (rc != MCF_OK)
		goto out;

	pid_t  ltid = (pid_t) atomic_load(&r.loop_tid);
	size_t pool_empty;
	mcf_inf_loop_mem(loop, NULL, &pool_empty);
	double heap_empty = heap_in_use() + (double) pool_empty;
	rc = measure_ingest(b, &s, inf, &r, ltid, "create", &res->create, ei);
	if (rc == MCF_OK)
		rc = measure_ingest(
		    b, &s, inf, &r, ltid, "update", &res->update, ei);
	if (rc != MCF_OK)
		goto out;

	/* Weigh the cache: the same N objects, now updated once. */
	json_t **objs   = NULL;
	size_t   nobj   = 0;
	double   json_b = 0;
	mcf_inf_list(inf, NULL, NULL, &objs, &nobj);
	for (size_t i = 0; i < nobj; i++) {
		char *t = json_dumps(objs[i], JSON_COMPACT);
		json_b += (double) strlen(t);
		free(t);
	}
	mcf_inf_objs_free(objs, nobj);
	mcf_inf_stats st;
	mcf_inf_get_stats(inf, &st);
	/* The cache's texts and entries live in the loop's store (mapped
	 * memory mallinfo2 does not see): its bytes in use count too. */
	size_t pool_mapped, pool_full, pool_rel;
	mcf_inf_loop_mem(loop, &pool_mapped, &pool_full);
	double heap_full = heap_in_use() + (double) pool_full;
	mcf_inf_remove_handler(inf, hid);
	mcf_inf_release(inf);
	inf = NULL;
	mcf_inf_loop_mem(loop, NULL, &pool_rel);
	double heap_rel = heap_in_use() + (double) pool_rel;
	res->json_obj   = json_b / (double) nobj;
	res->bytes_obj  = (heap_full - heap_rel) / (double) nobj;
	res->mem_ratio  = res->bytes_obj / res->json_obj;
	printf("# cache: %zu objects, %.0f B of compact JSON each; the "
	       "informer held %.1f MiB (%.0f B per object, %.2f x JSON) and "
	       "freed it on release; heap growth since the sync %.0f B per "
	       "new object\n",
	    nobj, res->json_obj, (heap_full - heap_rel) / 1048576.0,
	    res->bytes_obj, res->mem_ratio,
	    (heap_full - heap_empty) / (double) (nobj - 1));
	printf("# cache: of which the loop's store %.1f MiB in use (%.0f B "
	       "per object), %.1f MiB mapped\n",
	    (double) (pool_full - pool_rel) / 1048576.0,
	    (double) (pool_full - pool_rel) / (double) nobj,
	    (double) pool_mapped / 1048576.0);
	printf("# informer stats: %llu lists, %llu watches, %llu events, "
	       "%llu bookmarks, %llu stream errors, %llu request errors\n",
	    (unsigned long long) st.lists, (unsigned long long) st.watches,
	    (unsigned long long) st.events, (unsigned long long) st.bookmarks,
	    (unsigned long long) st.stream_errors,
	    (unsigned long long) st.request_errors);
	if (heap_full - heap_rel <= 0)
		printf(
		    "# cache: mallinfo2 saw nothing freed: the allocator is "
		    "not glibc's (a sanitizer?); cache_mem_ratio means "
		    "nothing in this build\n");
	if (nobj != (size_t) r.target + 1)
		rc = mcf_errinfo_set(ei, MCF_EINTERNAL,
		    "the cache holds %zu objects, not %lld", nobj,
		    (long long) r.target + 1);
out:
	if (inf != NULL) {
		mcf_inf_remove_handler(inf, hid);
		mcf_inf_release(inf);
	}
	mcf_inf_loop_destroy(loop);
	mcf_wq_destroy(r.q);
	return sim_stop(&s, b, rc, ei);
}

/* --------------------------------------------------------------------- */
/* e2e_changes_per_s and e2e_queue_p99_ms                                */
/* --------------------------------------------------------------------- */

/* What happened to one MyResource, by generation (index = generation). */
typedef struct tobj {
	int64_t  target;  /* last generation written */
	int64_t  started; /* highest generation a reconcile started with */
	int64_t  done;    /* highest generation a DONE reconcile had */
	int64_t *t_write; /* now_ns() before the write of generation g */
	int64_t *t_start; /* first reconcile start with generation >= g */
	int64_t *t_done;  /* first DONE with generation >= g */
} tobj;

typedef struct e2e {
	pthread_mutex_t mtx; /* guards objs[] and the tid list */
	tobj           *objs;
	int64_t         n_objs;
	int64_t         cap; /* generations per object */
	pid_t           rtid[64];
	int             n_rtid;
	atomic_llong    coalesced;  /* changes a reconcile skipped over */
	atomic_llong    reconciles; /* wrapper calls */
} e2e;

/* The reconcile callbacks have no argument: one run at a time. */
static e2e *g_e2e;

static int64_t
obj_generation(const json_t *o)
{
	return json_integer_value(
	    json_object_get(json_object_get(o, "metadata"), "generation"));
}

/* The wrapped reconcile: notes the generation it works on. */
static mcf_ctrl_result
bench_reconcile(mcf_ctrl_ctx *ctx, const char *ns, const char *name,
    int64_t *requeue_after_ms)
{
	e2e    *E = g_e2e;
	char    key[256];
	int64_t idx = -1, gen = 0;
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
	if (strncmp(name, "mr-", 3) == 0)
		idx = strtoll(name + 3, NULL, 10);
	json_t *o = mcf_ctrl_ctx_get(ctx, &mcf_myresource_gvr, key);
	if (o != NULL)
		gen = obj_generation(o);
	json_decref(o);
	if (idx < 0 || idx >= E->n_objs || gen >= E->cap)
		idx = -1;
	atomic_fetch_add(&E->reconciles, 1);
	int64_t t0 = now_ns();
	pthread_mutex_lock(&E->mtx);
	pid_t me    = gettid();
	bool  known = false;
	for (int i = 0; i < E->n_rtid; i++)
		known = known || E->rtid[i] == me;
	if (!known && E->n_rtid < 64)
		E->rtid[E->n_rtid++] = me;
	if (idx >= 0 && gen > E->objs[idx].started) {
		tobj *t = &E->objs[idx];
		if (gen > t->started + 1 && t->started > 0)
			atomic_fetch_add(&E->coalesced, gen - t->started - 1);
		for (int64_t g = t->started + 1; g <= gen; g++)
			t->t_start[g] = t0;
		t->started = gen;
	}
	pthread_mutex_unlock(&E->mtx);

	mcf_ctrl_result r = mcf_myresource_controller.reconcile(
	    ctx, ns, name, requeue_after_ms);

	if (r == MCF_CTRL_DONE && idx >= 0) {
		int64_t t1 = now_ns();
		pthread_mutex_lock(&E->mtx);
		tobj *t = &E->objs[idx];
		for (int64_t g = t->done + 1; g <= gen; g++)
			t->t_done[g] = t1;
		if (gen > t->done)
			t->done = gen;
		pthread_mutex_unlock(&E->mtx);
	}
	return r;
}

static mcf_ctrl_def        bench_def;
static const mcf_ctrl_def *bench_defs[] = { &bench_def };

/* A snapshot of the controller's metrics from the default registry. */
typedef struct ctrl_snap {
	double  le[MCF_WQ_HIST_BUCKETS + 1];     /* bucket bounds, +Inf last */
	double  bucket[MCF_WQ_HIST_BUCKETS + 1]; /* cumulative counts */
	int     nb;
	double  count, sum;
	double  results[4]; /* success, requeue, requeue_after, error */
	double  adds, retries;
	int64_t t;
} ctrl_snap;

static double
line_value(const char *line)
{
	const char *sp = strrchr(line, ' ');
	return sp != NULL ? strtod(sp + 1, NULL) : 0;
}

static void
ctrl_snap_take(ctrl_snap *s)
{
	memset(s, 0, sizeof(*s));
	char  *text = NULL;
	size_t len  = 0;
	if (mcf_metrics_render(mcf_metrics_default(), &text, &len) != MCF_OK)
		return;
	static const char *const res[]
	    = { "success", "requeue", "requeue_after", "error" };
	const char *hb
	    = "workqueue_queue_duration_seconds_bucket{name=\"" CTRL_NAME
	      "\",le=\"";
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, hb, strlen(hb)) == 0
		    && s->nb < MCF_WQ_HIST_BUCKETS + 1) {
			s->le[s->nb]       = strtod(l + strlen(hb), NULL);
			s->bucket[s->nb++] = line_value(l);
		} else if (strncmp(l,
		               "workqueue_queue_duration_seconds_count{name="
		               "\"" CTRL_NAME "\"}",
		               strlen("workqueue_queue_duration_seconds_count{"
		                      "name=\"" CTRL_NAME "\"}"))
		    == 0) {
			s->count = line_value(l);
		} else if (strncmp(l,
		               "workqueue_queue_duration_seconds_sum{name="
		               "\"" CTRL_NAME "\"}",
		               strlen("workqueue_queue_duration_seconds_sum{"
		                      "name=\"" CTRL_NAME "\"}"))
		    == 0) {
			s->sum = line_value(l);
		} else if (strncmp(l,
		               "workqueue_adds_total{name=\"" CTRL_NAME "\"}",
		               strlen("workqueue_adds_total{name=\"" CTRL_NAME
		                      "\"}"))
		    == 0) {
			s->adds = line_value(l);
		} else if (strncmp(l,
		               "workqueue_retries_total{name=\"" CTRL_NAME
		               "\"}",
		               strlen(
		                   "workqueue_retries_total{name=\"" CTRL_NAME
		                   "\"}"))
		    == 0) {
			s->retries = line_value(l);
		} else {
			for (int i = 0; i < 4; i++) {
				char want[160];
				snprintf(want, sizeof(want),
				    "controller_runtime_reconcile_total{"
				    "controller="
				    "\"" CTRL_NAME "\",result=\"%s\"} ",
				    res[i]);
				if (strncmp(l, want, strlen(want)) == 0)
					s->results[i] = line_value(l);
			}
		}
	}
	free(text);
	s->t = now_ns();
}

/* histogram_quantile(q) of the difference b - a, in seconds; `*frac_le1`
 * gets the fraction of observations <= 1 s, `*n` their number. */
static double
snap_quantile(const ctrl_snap *a, const ctrl_snap *b, double q,
    double *frac_le1, double *n)
{
	double total = b->count - a->count;
	*n           = total;
	*frac_le1    = 1;
	if (total <= 0 || b->nb == 0)
		return 0;
	double rank = q * total, lo = 0, prev = 0, out = b->le[b->nb - 1];
	bool   found = false;
	for (int i = 0; i < b->nb; i++) {
		double c = b->bucket[i] - (i < a->nb ? a->bucket[i] : 0);
		if (b->le[i] == 1.0)
			*frac_le1 = c / total;
		if (!found && c >= rank) {
			if (i
			    == b->nb - 1) /* +Inf: the highest finite bound */
				out = lo;
			else
				out = lo
				    + (b->le[i] - lo)
				        * (c > prev
				                ? (rank - prev) / (c - prev)
				                : 1);
			found = true;
		}
		prev = c;
		lo   = b->le[i];
	}
	return out;
}

typedef struct writer {
	e2e         *E;
	const bench *b;
	const char  *url;
	int          phase; /* 0: create the objects; 1, 2: changes */
	int          first; /* this writer's objects: first, first+stride.. */
	int          stride;
	int64_t      n;    /* writes */
	double       rate; /* writes/s of this writer; 0: at once */
	int64_t      t0;   /* phase start (pacing origin) */
	pid_t        tid;
	double       cpu_s;  /* this thread's CPU time */
	int64_t      t_last; /* end of the last write */
	int          rc;
	char         err[512];
} writer;

static void *
writer_main(void *arg)
{
	writer        *w = arg;
	e2e           *E = w->E;
	mcf_kubeconfig kc
	    = { .server = (char *) w->url, .namespace = (char *) "default" };
	mcf_kc     *c = NULL;
	mcf_errinfo ei;
	mcf_kc_opts o = { .timeout_ms = 60000LL * w->b->scale };
	w->tid        = gettid();
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	w->rc = mcf_kc_create(&kc, UA, &o, &c, &ei);
	if (w->rc != MCF_OK) {
		snprintf(
		    w->err, sizeof(w->err), "writer client: %.400s", ei.msg);
		return NULL;
	}
	const mcf_ctrl_gvr *g = &mcf_myresource_gvr;
	int64_t mine = (E->n_objs - w->first + w->stride - 1) / w->stride;
	for (int64_t k = 0; k < w->n && mine > 0; k++) {
		int64_t i = w->first + w->stride * (k % mine);
		char    name[32];
		snprintf(name, sizeof(name), "mr-%05lld", (long long) i);
		if (w->rate > 0) {
			int64_t at
			    = w->t0 + (int64_t) ((double) k * 1e9 / w->rate);
			int64_t d = at - now_ns();
			if (d > 0) {
				struct timespec ts = { d / 1000000000,
					(long) (d % 1000000000) };
				nanosleep(&ts, NULL);
			}
		}
		char v[64];
		snprintf(v, sizeof(v), "p%d-w%d-%lld", w->phase, w->first,
		    (long long) k);
		mcf_kc_ref ref
		    = { g->group, g->version, g->resource, NAMESPACE, NULL };
		mcf_kc_status st;
		json_t       *out = NULL, *body;
		int64_t       t   = now_ns();
		if (w->phase == 0) {
			body  = json_pack("{s:s,s:s,s:{s:s},s:{s:{s:s}}}",
			     "apiVersion", "example.mcfleet.io/v1alpha1",
			     "kind", "MyResource", "metadata", "name", name,
			     "spec", "data", "v", v);
			w->rc = mcf_kc_create_object(c, &ref, body, &out, &st);
		} else {
			ref.name = name;
			body     = json_pack(
			        "{s:{s:{s:s}}}", "spec", "data", "v", v);
			w->rc = mcf_kc_patch(
			    c, &ref, MCF_KC_PATCH_MERGE, body, &out, &st);
		}
		json_decref(body);
		if (w->rc != MCF_OK) {
			snprintf(w->err, sizeof(w->err),
			    "%s %s: %.400s (HTTP %d)",
			    w->phase == 0 ? "create" : "patch", name,
			    st.message, st.http_code);
			json_decref(out);
			break;
		}
		int64_t gen = obj_generation(out);
		json_decref(out);
		pthread_mutex_lock(&E->mtx);
		tobj *tb = &E->objs[i];
		if (gen > 0 && gen < E->cap) {
			tb->t_write[gen] = t;
			tb->target       = gen;
		} else {
			w->rc = MCF_EINTERNAL;
			snprintf(w->err, sizeof(w->err),
			    "%s: generation %lld out of range", name,
			    (long long) gen);
		}
		pthread_mutex_unlock(&E->mtx);
		if (w->rc != MCF_OK)
			break;
	}
	w->t_last = now_ns();
	mcf_kc_destroy(c);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	w->cpu_s = (double) (c1.tv_sec - c0.tv_sec)
	    + (double) (c1.tv_nsec - c0.tv_nsec) / 1e9;
	return NULL;
}

/* What one phase measured. */
typedef struct phase_result {
	double changes_per_s; /* changes a reconcile started on exactly, per
	                         second from the first write to the last
	                         change done */
	double wait_p99_ms;   /* per change: write sent -> reconcile start */
	double frac_le1;      /* queue histogram: share <= 1 s */
	double hist_p99_ms;   /* queue histogram, interpolated */
} phase_result;

#define MAX_WRITERS 16

/* Runs one phase (`writers` threads writing `n` changes in all, at `rate`
 * in all, 0: as fast as they can) and waits until every object's last
 * generation was seen done; prints its "#" lines. */
static int
run_phase(e2e *E, const bench *b, sim *s, int phase, int64_t n, double rate,
    int writers, phase_result *pr, mcf_errinfo *ei)
{
	ctrl_snap a, z;
	tasks     ta, tz;
	ctrl_snap_take(&a);
	long long co0 = atomic_load(&E->coalesced);
	long long rc0 = atomic_load(&E->reconciles);
	tasks_take(&ta);
	double    ks0 = pid_cpu_s(s->ks.pid);
	double    cp0 = proc_cpu_s();
	writer    w[MAX_WRITERS];
	pthread_t th[MAX_WRITERS];
	int64_t   t0 = now_ns();
	for (int j = 0; j < writers; j++) {
		w[j] = (writer) { .E = E,
			.b           = b,
			.url         = s->ks.url,
			.phase       = phase,
			.first       = j,
			.stride      = writers,
			.n           = n / writers + (j < n % writers ? 1 : 0),
			.rate        = rate / writers,
			.t0          = t0 };
		if (pthread_create(&th[j], NULL, writer_main, &w[j]) != 0)
			mcf_panic("pthread_create");
	}
	int64_t t_wend = t0;
	double  wcpu   = 0;
	int     wrc    = MCF_OK;
	for (int j = 0; j < writers; j++) {
		pthread_join(th[j], NULL);
		if (w[j].rc != MCF_OK && wrc == MCF_OK) {
			wrc = w[j].rc;
			mcf_errinfo_set(ei, w[j].rc, "writer: %s", w[j].err);
		}
		if (w[j].t_last > t_wend)
			t_wend = w[j].t_last;
		wcpu += w[j].cpu_s;
	}
	if (wrc != MCF_OK)
		return wrc;

	/* Every object converged when its last generation was seen done. */
	int64_t deadline
	    = now_ns() + (int64_t) CONVERGE_DEADLINE_MS * b->scale * 1000000;
	int64_t left = 0;
	for (;;) {
		left = 0;
		pthread_mutex_lock(&E->mtx);
		for (int64_t i = 0; i < E->n_objs; i++)
			if (E->objs[i].done < E->objs[i].target)
				left++;
		pthread_mutex_unlock(&E->mtx);
		if (left == 0 || now_ns() > deadline)
			break;
		sleep_ms(2);
	}
	if (left != 0)
		return mcf_errinfo_set(ei, MCF_ETIMEDOUT,
		    "phase %d: %lld of %lld objects not reconciled after %d "
		    "ms",
		    phase, (long long) left, (long long) E->n_objs,
		    CONVERGE_DEADLINE_MS * b->scale);
	double cp1 = proc_cpu_s();
	double ks1 = pid_cpu_s(s->ks.pid);
	tasks_take(&tz);
	ctrl_snap_take(&z);

	/* Per change: write -> reconcile start, write -> done. */
	int64_t t_end = 0;
	double *ls    = mcf_calloc((size_t) n, sizeof(double));
	double *ld    = mcf_calloc((size_t) n, sizeof(double));
	size_t  nl    = 0;
	pthread_mutex_lock(&E->mtx);
	for (int64_t i = 0; i < E->n_objs; i++) {
		tobj *t = &E->objs[i];
		if (t->t_done[t->target] > t_end)
			t_end = t->t_done[t->target];
		for (int64_t g = t->target; g > 0; g--) {
			if (t->t_write[g] < t0 || nl == (size_t) n)
				break;
			ls[nl]
			    = (double) (t->t_start[g] - t->t_write[g]) / 1e6;
			ld[nl] = (double) (t->t_done[g] - t->t_write[g]) / 1e6;
			nl++;
		}
	}
	pthread_mutex_unlock(&E->mtx);
	qsort(ls, nl, sizeof(double), cmp_double);
	qsort(ld, nl, sizeof(double), cmp_double);

	long long co      = atomic_load(&E->coalesced) - co0;
	long long recs    = atomic_load(&E->reconciles) - rc0;
	double    span    = (double) (t_end - t0) / 1e9;
	double    wr_s    = (double) (t_wend - t0) / 1e9;
	pr->changes_per_s = (double) (n - co) / span;
	pr->wait_p99_ms   = nl > 0 ? quantile_sorted(ls, nl, 0.99) : 0;
	double nq, fr50;
	pr->hist_p99_ms
	    = 1e3 * snap_quantile(&a, &z, 0.99, &pr->frac_le1, &nq);
	double p50 = snap_quantile(&a, &z, 0.50, &fr50, &nq);

	const char *what = phase == 0 ? "create" : rate > 0 ? "paced" : "max";
	printf("# e2e %s: %lld %s of %lld objects by %d writer%s in %.3f s "
	       "(%.0f/s%s); all done %.3f s after the first write: %.0f "
	       "changes/s, %.0f/s counting only the %lld a reconcile "
	       "started on (%lld were folded into a later change of the "
	       "same object)\n",
	    what, (long long) n, phase == 0 ? "creates" : "changes",
	    (long long) E->n_objs, writers, writers == 1 ? "" : "s", wr_s,
	    (double) n / wr_s, rate > 0 ? ", paced" : "", span,
	    (double) n / span, pr->changes_per_s, (long long) n - co, co);
	if (nl > 0)
		printf(
		    "# e2e %s latency per change (ms), write sent -> "
		    "reconcile start: p50 %.1f, p99 %.1f, max %.1f; -> DONE: "
		    "p50 %.1f, p99 %.1f, max %.1f (%zu changes)\n",
		    what, quantile_sorted(ls, nl, 0.5), pr->wait_p99_ms,
		    ls[nl - 1], quantile_sorted(ld, nl, 0.5),
		    quantile_sorted(ld, nl, 0.99), ld[nl - 1], nl);
	printf("# e2e %s queue histogram: %.0f gets, %.2f%% <= 1 s, mean "
	       "%.3g ms; interpolated p50 %.3g ms, p99 %.3g ms (decade "
	       "buckets: only the bound is exact); %.0f adds, %.0f "
	       "rate-limited or delayed re-adds\n",
	    what, nq, 100 * pr->frac_le1,
	    nq > 0 ? (z.sum - a.sum) / nq * 1e3 : 0, p50 * 1e3,
	    pr->hist_p99_ms, z.adds - a.adds, z.retries - a.retries);
	printf("# e2e %s reconciles: %lld (%.2f per change): success %.0f, "
	       "requeue %.0f, requeue_after %.0f, error %.0f\n",
	    what, recs, (double) recs / (double) n,
	    z.results[0] - a.results[0], z.results[1] - a.results[1],
	    z.results[2] - a.results[2], z.results[3] - a.results[3]);
	/* CPU by thread: the reconcile threads (the wrapper saw them), the
	 * writers, main, and the rest (the informer loop). */
	double rec = 0;
	pthread_mutex_lock(&E->mtx);
	for (int i = 0; i < E->n_rtid; i++)
		rec += tasks_delta(&ta, &tz, E->rtid[i]);
	pthread_mutex_unlock(&E->mtx);
	double all   = tasks_total(&ta, &tz);
	double mainc = tasks_delta(&ta, &tz, getpid());
	/* The writers exited before the second snapshot: not in `all`. */
	double other = all - rec - mainc;
	if (other < 0)
		other = 0;
	double pw = span > 0 ? span : 1;
	printf("# e2e %s CPU over %.3f s: this process %.2f s (%.0f%% of a "
	       "core): reconcile threads %.2f s, informer loop and other "
	       "threads %.2f s, writers %.2f s, main %.2f s -> controller "
	       "(reconcile + loop) %.0f%% of a core, %.0f changes per "
	       "controller CPU-second; kubesim %.2f s (%.0f%%)\n",
	    what, pw, cp1 - cp0, 100 * (cp1 - cp0) / pw, rec, other, wcpu,
	    mainc, 100 * (rec + other) / pw, (double) n / (rec + other),
	    ks1 - ks0, 100 * (ks1 - ks0) / pw);
	fflush(stdout);
	free(ls);
	free(ld);
	return MCF_OK;
}

/* Every MyResource is Ready at its generation and its ConfigMap holds
 * spec.data. */
static int
verify(sim *s, int64_t n_objs, mcf_errinfo *ei)
{
	mcf_kc_ref mref
	    = { mcf_myresource_gvr.group, mcf_myresource_gvr.version,
		      mcf_myresource_gvr.resource, NAMESPACE, NULL };
	mcf_kc_ref cref = { "", "v1", "configmaps", NAMESPACE, NULL };
	json_t    *ml = NULL, *cl = NULL;
	int        rc = mcf_kc_list(s->c, &mref, NULL, &ml, NULL);
	if (rc == MCF_OK)
		rc = mcf_kc_list(s->c, &cref, NULL, &cl, NULL);
	if (rc != MCF_OK) {
		json_decref(ml);
		return mcf_errinfo_set(ei, rc, "verify: LIST failed");
	}
	json_t *cms = json_object();
	size_t  i;
	json_t *it;
	json_array_foreach(json_object_get(cl, "items"), i, it)
	{
		json_object_set(cms,
		    json_string_value(json_object_get(
		        json_object_get(it, "metadata"), "name")),
		    json_object_get(it, "data"));
	}
	int64_t bad = 0, seen = 0;
	json_array_foreach(json_object_get(ml, "items"), i, it)
	{
		seen++;
		int64_t     gen  = obj_generation(it);
		json_t     *st   = json_object_get(it, "status");
		const char *name = json_string_value(
		    json_object_get(json_object_get(it, "metadata"), "name"));
		bool ok = json_integer_value(
		              json_object_get(st, "observedGeneration"))
		    == gen;
		bool    ready = false;
		size_t  j;
		json_t *c;
		json_array_foreach(json_object_get(st, "conditions"), j, c)
		{
			if (strcmp(
			        json_string_value(json_object_get(c, "type")),
			        "Ready")
			        == 0
			    && strcmp(json_string_value(
			                  json_object_get(c, "status")),
			           "True")
			        == 0
			    && json_integer_value(
			           json_object_get(c, "observedGeneration"))
			        == gen)
				ready = true;
		}
		json_t *want
		    = json_object_get(json_object_get(it, "spec"), "data");
		json_t *have = json_object_get(cms, name ? name : "");
		if (!ok || !ready || have == NULL || !json_equal(want, have))
			bad++;
	}
	json_decref(cms);
	json_decref(ml);
	json_decref(cl);
	if (seen != n_objs || bad != 0)
		return mcf_errinfo_set(ei, MCF_EINTERNAL,
		    "verify: %lld MyResources listed (want %lld), %lld not "
		    "Ready "
		    "at their generation or with a ConfigMap not matching "
		    "spec",
		    (long long) seen, (long long) n_objs, (long long) bad);
	printf("# e2e verify: all %lld MyResources Ready at their generation, "
	       "their ConfigMaps match spec.data\n",
	    (long long) seen);
	return MCF_OK;
}

/* The CRD from deploy/crds as JSON. */
static int
load_crd(const bench *b, json_t **out, mcf_errinfo *ei)
{
	FILE *f = fopen(b->crd_path, "r");
	if (f == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EIO, "%s: %s", b->crd_path, strerror(errno));
	char  *text = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap  = cap ? cap * 2 : 65536;
			text = mcf_realloc(text, cap);
		}
		size_t r = fread(text + len, 1, cap - len, f);
		if (r == 0)
			break;
		len += r;
	}
	fclose(f);
	int rc = mcf_yaml_parse_json(text, len, b->crd_path, out, ei);
	free(text);
	return rc;
}

typedef struct e2e_result {
	double changes_per_s; /* unpaced phase */
	double p99_ms;        /* paced phase */
} e2e_result;

static int
measure_e2e(const bench *b, e2e_result *res, mcf_errinfo *ei)
{
	json_t *crd = NULL;
	int     rc  = load_crd(b, &crd, ei);
	if (rc != MCF_OK)
		return rc;
	sim s;
	rc = sim_start(&s, b, ei);
	if (rc != MCF_OK) {
		json_decref(crd);
		return rc;
	}
	mcf_ctrl_mgr *m = NULL;
	e2e           E = { .n_objs = b->sz.e2e_objects };
	pthread_mutex_init(&E.mtx, NULL);
	/* Generation 1 at creation, then one per change of each phase. */
	E.cap  = 3 + 2 * ((b->sz.e2e_changes + E.n_objs - 1) / E.n_objs);
	E.objs = mcf_calloc((size_t) E.n_objs, sizeof(*E.objs));
	for (int64_t i = 0; i < E.n_objs; i++) {
		E.objs[i].t_write
		    = mcf_calloc((size_t) E.cap, sizeof(int64_t));
		E.objs[i].t_start
		    = mcf_calloc((size_t) E.cap, sizeof(int64_t));
		E.objs[i].t_done = mcf_calloc((size_t) E.cap, sizeof(int64_t));
	}
	g_e2e = &E;

	mcf_kc_status st;
	mcf_kc_ref    cref = { "apiextensions.k8s.io", "v1",
		   "customresourcedefinitions", NULL, NULL };
	rc                 = mcf_kc_create_object(s.c, &cref, crd, NULL, &st);
	if (rc != MCF_OK)
		mcf_errinfo_set(ei, rc, "creating the CRD: %s", st.message);
	if (rc == MCF_OK)
		rc = sim_namespace(&s, ei);
	if (rc == MCF_OK) {
		bench_def               = mcf_myresource_controller;
		bench_def.reconcile     = bench_reconcile;
		mcf_ctrl_mgr_config cfg = {
			.defs       = bench_defs,
			.n_defs     = 1,
			.user_agent = UA,
			.identity   = "controller-bench",
			.namespace  = NAMESPACE,
		};
		rc = mcf_ctrl_mgr_create(&cfg, &m, ei);
	}
	if (rc == MCF_OK)
		rc = mcf_ctrl_mgr_engage(m, "", &s.kc, ei);
	int64_t deadline
	    = now_ns() + (int64_t) SYNC_DEADLINE_MS * b->scale * 1000000;
	for (;;) {
		if (rc != MCF_OK)
			break;
		mcf_ctrl_cluster_status cs = { 0 };
		if (mcf_ctrl_mgr_cluster_status(m, "", &cs) == MCF_OK
		    && cs.state == MCF_CTRL_CLUSTER_SYNCED
		    && strstr(cs.reason, "waiting") == NULL)
			break;
		if (now_ns() > deadline)
			rc = mcf_errinfo_set(ei, MCF_ETIMEDOUT,
			    "the controller's informers did not sync: %s",
			    cs.reason);
		sleep_ms(5);
	}
	if (rc != MCF_OK)
		goto out;
	mcf_ctrl_mgr_resume(m);
	printf("# e2e: %lld MyResources in namespace " NAMESPACE ", %lld "
	       "changes per phase, the paced phase at %.0f changes/s; "
	       "controller " CTRL_NAME " with %d reconcile threads\n",
	    (long long) E.n_objs, (long long) b->sz.e2e_changes,
	    b->sz.e2e_rate, mcf_myresource_controller.max_concurrency);

	phase_result pr;
	int          nw = (int) b->sz.e2e_writers;
	rc              = run_phase(&E, b, &s, 0, E.n_objs, 0, nw, &pr, ei);
	if (rc == MCF_OK)
		rc = run_phase(&E, b, &s, 1, b->sz.e2e_changes, b->sz.e2e_rate,
		    nw, &pr, ei);
	if (rc == MCF_OK) {
		/* The change wait bounds the queue time from above; a queue
		 * histogram with more than 1% over 1 s fails all the same. */
		res->p99_ms
		    = pr.frac_le1 >= 0.99 ? pr.wait_p99_ms : pr.hist_p99_ms;
		if (pr.frac_le1 < 0.99)
			printf(
			    "# e2e paced: the queue histogram has %.2f%% over "
			    "1 s: e2e_queue_p99_ms is its interpolated p99\n",
			    100 * (1 - pr.frac_le1));
		rc = run_phase(
		    &E, b, &s, 2, b->sz.e2e_changes, 0, nw, &pr, ei);
	}
	if (rc == MCF_OK) {
		res->changes_per_s = pr.changes_per_s;
		/* The last status writes land after the DONE was noted. */
		sleep_ms(200);
		rc = verify(&s, E.n_objs, ei);
	}
out:
	mcf_ctrl_mgr_destroy(m);
	g_e2e = NULL;
	for (int64_t i = 0; i < E.n_objs; i++) {
		free(E.objs[i].t_write);
		free(E.objs[i].t_start);
		free(E.objs[i].t_done);
	}
	free(E.objs);
	pthread_mutex_destroy(&E.mtx);
	json_decref(crd);
	return sim_stop(&s, b, rc, ei);
}

/* --------------------------------------------------------------------- */
/* Driver                                                                */
/* --------------------------------------------------------------------- */

enum cmp {
	CMP_LE, /* value <= target */
	CMP_GE, /* value >= target */
};

typedef struct metric {
	const char *name;
	const char *unit;
	const char *target_text;
	double      target;
	enum cmp    cmp;
} metric;

enum {
	M_WQ,
	M_INF_EVENTS,
	M_INF_UPDATES,
	M_CACHE,
	M_E2E_RATE,
	M_E2E_P99,
	M_COUNT
};

static const metric metrics[M_COUNT] = {
	[M_WQ] = { "wq_cycles_per_s", "cycles/s", ">=1000000", 1e6, CMP_GE },
	[M_INF_EVENTS]  = { "informer_events_per_cpu_s", "events/CPU-s",
	     ">=50000", 50000, CMP_GE },
	[M_INF_UPDATES] = { "informer_update_events_per_cpu_s", "events/CPU-s",
	    ">=50000", 50000, CMP_GE },
	[M_CACHE] = { "cache_mem_ratio", "x_json", "<=2.0", 2.0, CMP_LE },
	[M_E2E_RATE]
	= { "e2e_changes_per_s", "changes/s", ">=1000", 1000, CMP_GE },
	[M_E2E_P99] = { "e2e_queue_p99_ms", "ms", "<=1000", 1000, CMP_LE },
};

/* Prints metric `m` from `n` samples (sorted here), or its error line.
 * Returns the exit code it contributes. */
static int
report(
    const bench *b, int m, double *v, size_t n, int rc, const mcf_errinfo *ei)
{
	const metric *mt = &metrics[m];
	if (rc != MCF_OK || n == 0) {
		printf("# %s: error: %s\n", mt->name, ei->msg);
		printf(
		    "%s - %s %s FAIL\n", mt->name, mt->unit, mt->target_text);
		fflush(stdout);
		return EXIT_ERROR;
	}
	double med = median(v, n);
	bool   ok  = mt->cmp == CMP_LE ? med <= mt->target : med >= mt->target;
	if (n > 1)
		printf("# %s: median of %zu, min %.2f, max %.2f\n", mt->name,
		    n, v[0], v[n - 1]);
	printf("%s %.*f %s %s %s\n", mt->name, m == M_CACHE ? 2 : 1, med,
	    mt->unit, mt->target_text,
	    b->smoke ? "smoke"
	        : ok ? "PASS"
	             : "FAIL");
	fflush(stdout);
	return b->smoke || ok ? EXIT_PASS : EXIT_FAIL;
}

static int
run_wq(const bench *b, int repeat)
{
	double     *v  = mcf_calloc((size_t) repeat, sizeof(double));
	double     *v4 = mcf_calloc((size_t) repeat, sizeof(double));
	int         rc = MCF_OK;
	mcf_errinfo ei;
	mcf_errinfo_clear(&ei);
	for (int i = 0; rc == MCF_OK && i < repeat; i++) {
		rc = measure_wq(b, 1, &v[i], &ei);
		if (rc == MCF_OK)
			rc = measure_wq(
			    b, (int) b->sz.wq_threads, &v4[i], &ei);
		fflush(stdout);
	}
	if (rc == MCF_OK)
		printf("# wq_cycles_per_s with %lld threads on one queue: "
		       "median %.0f cycles/s (information, no target)\n",
		    (long long) b->sz.wq_threads, median(v4, (size_t) repeat));
	int code
	    = report(b, M_WQ, v, rc == MCF_OK ? (size_t) repeat : 0, rc, &ei);
	free(v);
	free(v4);
	return code;
}

static int
run_informer(const bench *b, int repeat)
{
	size_t      rp   = (size_t) repeat;
	double     *ev   = mcf_calloc(rp, sizeof(double));
	double     *up   = mcf_calloc(rp, sizeof(double));
	double     *mem  = mcf_calloc(rp, sizeof(double));
	double     *wall = mcf_calloc(rp, sizeof(double));
	double     *loop = mcf_calloc(rp, sizeof(double));
	double     *uw   = mcf_calloc(rp, sizeof(double));
	double     *ul   = mcf_calloc(rp, sizeof(double));
	double     *bpo  = mcf_calloc(rp, sizeof(double));
	int         rc   = MCF_OK;
	mcf_errinfo ei;
	mcf_errinfo_clear(&ei);
	for (int i = 0; rc == MCF_OK && i < repeat; i++) {
		inf_result r = { 0 };
		rc           = measure_informer(b, &r, &ei);
		ev[i]        = r.create.ev_per_cpu;
		wall[i]      = r.create.ev_per_s;
		loop[i]      = r.create.ev_per_loop;
		up[i]        = r.update.ev_per_cpu;
		uw[i]        = r.update.ev_per_s;
		ul[i]        = r.update.ev_per_loop;
		mem[i]       = r.mem_ratio;
		bpo[i]       = r.bytes_obj;
		fflush(stdout);
	}
	size_t n = rc == MCF_OK ? rp : 0;
	if (n > 0) {
		printf("# informer medians, creates: %.0f events/s wall clock "
		       "(kubesim writes and serves the events on the same 2 "
		       "cores), %.0f events per loop-thread CPU-second\n",
		    median(wall, n), median(loop, n));
		printf("# informer medians, updates: %.0f events/s wall "
		       "clock, %.0f events per loop-thread CPU-second; %.0f "
		       "cache bytes per object\n",
		    median(uw, n), median(ul, n), median(bpo, n));
	}
	int c1 = report(b, M_INF_EVENTS, ev, n, rc, &ei);
	int c2 = report(b, M_INF_UPDATES, up, n, rc, &ei);
	int c3 = report(b, M_CACHE, mem, n, rc, &ei);
	free(ev);
	free(up);
	free(mem);
	free(wall);
	free(loop);
	free(uw);
	free(ul);
	free(bpo);
	int c = c1 > c2 ? c1 : c2;
	return c > c3 ? c : c3;
}

static int
run_e2e(const bench *b, int repeat)
{
	double     *rate = mcf_calloc((size_t) repeat, sizeof(double));
	double     *p99  = mcf_calloc((size_t) repeat, sizeof(double));
	int         rc   = MCF_OK;
	mcf_errinfo ei;
	mcf_errinfo_clear(&ei);
	for (int i = 0; rc == MCF_OK && i < repeat; i++) {
		e2e_result r = { 0 };
		rc           = measure_e2e(b, &r, &ei);
		rate[i]      = r.changes_per_s;
		p99[i]       = r.p99_ms;
		fflush(stdout);
	}
	size_t n  = rc == MCF_OK ? (size_t) repeat : 0;
	int    c1 = report(b, M_E2E_RATE, rate, n, rc, &ei);
	int    c2 = report(b, M_E2E_P99, p99, n, rc, &ei);
	free(rate);
	free(p99);
	return c1 > c2 ? c1 : c2;
}

/* The kubesim next to this binary in the build tree. */
static char *
default_kubesim(void)
{
	char    self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return mcf_strdup("kubesim");
	self[n]     = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	return mcf_asprintf("%s/../kubesim/kubesim", self);
}

int
main(int argc, char **argv)
{
	char   *ks_path = NULL, *only = NULL, *crd = NULL;
	int64_t repeat = 1, events = 0, objects = 0, changes = 0, cycles = 0,
	        writers      = 0;
	double         rate  = 0;
	bool           smoke = false, pin = false;
	const mcf_flag flags[] = {
		{ "smoke", MCF_FLAG_BOOL, NULL, "false",
		    "small sizes, for CTest: exit 0 when every metric was "
		    "measured",
		    &smoke },
		{ "kubesim", MCF_FLAG_STRING, "PATH", NULL,
		    "kubesim binary (default: ../kubesim/kubesim next to this "
		    "one)",
		    &ks_path },
		{ "repeat", MCF_FLAG_INT, "N", "1",
		    "run every measurement N times and print the medians",
		    &repeat },
		{ "only", MCF_FLAG_STRING, "GROUP[,GROUP]", NULL,
		    "run only these groups: wq, informer (its events and "
		    "cache "
		    "metrics), e2e",
		    &only },
		{ "crd", MCF_FLAG_STRING, "FILE", NULL,
		    "the MyResource CRD (default: the source tree's "
		    "deploy/crds/myresources.example.mcfleet.io.yaml)",
		    &crd },
		{ "events", MCF_FLAG_INT, "N", "0",
		    "objects /_sim/load creates, then updates, for the "
		    "informer (0: 100000, smoke 2000)",
		    &events },
		{ "wq-cycles", MCF_FLAG_INT, "N", "0",
		    "work-queue cycles per run (0: 2000000, smoke 20000)",
		    &cycles },
		{ "objects", MCF_FLAG_INT, "N", "0",
		    "MyResources (0: 1000, smoke 20)", &objects },
		{ "changes", MCF_FLAG_INT, "N", "0",
		    "spec changes per e2e phase (0: 10000, smoke 200)",
		    &changes },
		{ "rate", MCF_FLAG_DOUBLE, "R", "0",
		    "changes/s of the paced e2e phase (0: 1000, smoke 200)",
		    &rate },
		{ "writers", MCF_FLAG_INT, "N", "0",
		    "writer threads of the e2e phases (0: 2)", &writers },
		{ "pin", MCF_FLAG_BOOL, NULL, "false",
		    "pin this process to CPU 0 and kubesim to CPU 1", &pin },
	};
	mcf_flagset fs = {
		.prog    = "controller_bench",
		.summary = "benchmark of the informer, cache, work queue and "
		           "MyResource controller against kubesim: prints "
		           "`metric value unit target PASS|FAIL` per metric",
		.flags   = flags,
		.count   = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei;
	mcf_alloc_init_libs();
	mcf_log_init("controller_bench", MCF_LOG_WARN);
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, "controller_bench: %s\n", ei.msg);
		mcf_flags_free(&fs);
		return EXIT_ERROR;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return EXIT_PASS;
	}
	int  code    = EXIT_PASS;
	bool want_wq = only == NULL, want_inf = only == NULL,
	     want_e2e = only == NULL;
	char *def     = NULL;
	if (only != NULL) {
		char *save = NULL;
		for (char *t = strtok_r(only, ",", &save); t != NULL;
		     t       = strtok_r(NULL, ",", &save)) {
			if (strcmp(t, "wq") == 0)
				want_wq = true;
			else if (strcmp(t, "informer") == 0)
				want_inf = true;
			else if (strcmp(t, "e2e") == 0)
				want_e2e = true;
			else {
				fprintf(stderr,
				    "controller_bench: --only: unknown group "
				    "\"%s\"\n",
				    t);
				code = EXIT_ERROR;
				goto out;
			}
		}
	}
	if (repeat < 1 || repeat > 100 || events < 0 || objects < 0
	    || changes < 0 || cycles < 0 || rate < 0 || writers < 0
	    || writers > MAX_WRITERS || objects > 99999) {
		fprintf(stderr,
		    "controller_bench: bad sizes (--repeat 1..100, "
		    "--objects up to 99999, --writers up to %d, no "
		    "negative sizes)\n",
		    MAX_WRITERS);
		code = EXIT_ERROR;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	bench b = { .sz = smoke ? smoke_sizes : full_sizes,
		.smoke  = smoke,
		.pin    = pin };
	if (events > 0)
		b.sz.inf_events = events;
	if (cycles > 0)
		b.sz.wq_cycles = cycles;
	if (objects > 0)
		b.sz.e2e_objects = objects;
	if (changes > 0)
		b.sz.e2e_changes = changes;
	if (rate > 0)
		b.sz.e2e_rate = rate;
	if (writers > 0)
		b.sz.e2e_writers = writers;
	if (b.sz.e2e_writers > b.sz.e2e_objects) {
		fprintf(stderr,
		    "controller_bench: more writers than MyResources\n");
		code = EXIT_ERROR;
		goto out;
	}
	b.crd_path        = crd != NULL ? crd : CONTROLLER_BENCH_CRD;
	def               = ks_path == NULL ? default_kubesim() : NULL;
	const char *kpath = ks_path != NULL ? ks_path : def;
	if (access(kpath, X_OK) != 0) {
		fprintf(stderr, "controller_bench: cannot run %s: %s\n", kpath,
		    strerror(errno));
		code = EXIT_ERROR;
		goto out;
	}
	setenv("KUBESIM", kpath, 1); /* ks_spawn reads it */
	const char *sc = getenv("MCF_TEST_TIMEOUT_SCALE");
	b.scale        = sc != NULL && atoi(sc) > 0 ? atoi(sc) : 1;
	if (pin) {
		/* Every thread started from now on inherits this. */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		if (sysconf(_SC_NPROCESSORS_ONLN) < 2
		    || sched_setaffinity(0, sizeof(set), &set) != 0) {
			fprintf(
			    stderr, "controller_bench: --pin needs 2 CPUs\n");
			code = EXIT_ERROR;
			goto out;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	printf("# controller_bench: %s run, %lld repetition%s, kubesim: %s "
	       "--listen 127.0.0.1:0 --log-level warn --history-events 200000"
	       "%s; %ld CPUs\n",
	    smoke ? "smoke" : "full", (long long) repeat,
	    repeat == 1 ? "" : "s", kpath,
	    pin ? "; pinned: this process on CPU 0, kubesim on CPU 1" : "",
	    sysconf(_SC_NPROCESSORS_ONLN));
	printf("# sizes: wq %lld cycles in batches of %lld, 1 and %lld "
	       "threads; informer %lld objects of %lld B created and "
	       "updated; e2e %lld "
	       "MyResources, %lld changes per phase by %lld writers, paced "
	       "at %.0f/s\n",
	    (long long) b.sz.wq_cycles, (long long) b.sz.wq_batch,
	    (long long) b.sz.wq_threads, (long long) b.sz.inf_events,
	    (long long) b.sz.obj_size, (long long) b.sz.e2e_objects,
	    (long long) b.sz.e2e_changes, (long long) b.sz.e2e_writers,
	    b.sz.e2e_rate);
	fflush(stdout);
	int c;
	if (want_wq && (c = run_wq(&b, (int) repeat)) > code)
		code = c;
	if (want_inf && (c = run_informer(&b, (int) repeat)) > code)
		code = c;
	if (want_e2e && (c = run_e2e(&b, (int) repeat)) > code)
		code = c;
	curl_global_cleanup();
out:
	free(def);
	mcf_flags_free(&fs);
	return code;
}
