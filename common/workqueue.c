/*
 * workqueue.c — client-go style work queue of string keys.
 *
 * Every key the queue knows about has one wq_item, found through a chained
 * hash table.  An item carries the states client-go keeps in separate sets:
 *
 *   dirty       the key must be processed (again); client-go's dirty set
 *   queued      the item is on the FIFO (implies dirty)
 *   processing  a worker holds the key; client-go's processing set
 *   failures    the rate limiter's per-key count (NumRequeues)
 *   heap_idx    its slot in the delay heap, or -1
 *
 * An item is freed as soon as none of these holds, so the table only grows
 * with keys that have work or backoff state.
 *
 * add: if dirty, nothing to do (dedup).  Else mark dirty and, unless it is
 * processing, append to the FIFO and wake one getter.
 * get: pop the FIFO head, clear dirty, set processing.
 * done: clear processing; if dirty again meanwhile, append to the FIFO.
 *
 * Delayed keys sit in a binary min-heap on their ready time.  Instead of a
 * timer thread, getters promote due keys themselves: a getter with nothing
 * to take waits on `cv` until the earlier of its own deadline and the heap
 * top's ready time.  Whenever the heap top gets earlier, `cv` is broadcast
 * so sleepers recompute their wake-up time.  Metrics reads also promote, so
 * depth does not lag when all workers are busy.
 *
 * Condition variables use CLOCK_MONOTONIC, so wall-clock steps do not
 * shorten or stretch waits.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h> /* INFINITY, isnan: macros, no libm needed */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "err.h"
#include "workqueue.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

typedef struct wq_item wq_item;
struct wq_item {
	char     *key; /* owned */
	uint64_t  hash;
	wq_item  *chain; /* borrowed: next in the hash bucket */
	wq_item  *qnext; /* borrowed: next on the FIFO */
	bool      dirty;
	bool      queued;
	bool      processing;
	uint32_t  failures;
	ptrdiff_t heap_idx; /* -1 when not waiting */
	int64_t   ready_ns; /* when waiting: monotonic ready time */
	uint64_t  heap_seq; /* when waiting: tie-breaker, FIFO among equals */
	int64_t   add_ns;   /* when queued: time it was queued */
	int64_t   start_ns; /* when processing: time it was handed out */
};

struct mcf_wq {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;      /* getters wait here */
	pthread_cond_t  idle_cv; /* mcf_wq_stop() waits here */
	char           *name;    /* owned */

	/* Options, fixed at creation. */
	int64_t base_ns;
	int64_t max_ns;
	double  qps;
	double  burst;

	/* Hash table of all items; `tab` owned, items owned through it. */
	wq_item **tab;
	size_t    tab_size; /* power of two */
	size_t    nitems;

	/* FIFO of queued items; borrowed pointers into the table. */
	wq_item *qhead;
	wq_item *qtail;
	int64_t  depth;

	/* Delay heap; `heap` owned, entries borrowed. */
	wq_item **heap;
	size_t    heap_len;
	size_t    heap_cap;
	uint64_t  heap_seq;

	/* Token bucket. */
	double  tokens;
	int64_t tokens_ns; /* time `tokens` was computed for */

	int64_t nprocessing;
	bool    closed;

	uint64_t    adds_total;
	uint64_t    retries_total;
	mcf_wq_hist queue_hist;
	mcf_wq_hist work_hist;
};

/* ---- lock wrappers: pthread errors are programming errors (§5) ---- */

static void
wq_lock(mcf_wq *q)
{
	if (pthread_mutex_lock(&q->mtx) != 0)
		mcf_panic("workqueue: pthread_mutex_lock failed");
}

static void
wq_unlock(mcf_wq *q)
{
	if (pthread_mutex_unlock(&q->mtx) != 0)
		mcf_panic("workqueue: pthread_mutex_unlock failed");
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Waits on `cv` until signalled or until monotonic time `until_ns`
 * (< 0: no limit).  Spurious wake-ups are the caller's to handle. */
static void
wq_wait_locked(mcf_wq *q, pthread_cond_t *cv, int64_t until_ns)
{
	int rv;
	if (until_ns < 0) {
		rv = pthread_cond_wait(cv, &q->mtx);
	} else {
		struct timespec ts;
		ts.tv_sec  = (time_t) (until_ns / NS_PER_S);
		ts.tv_nsec = (long) (until_ns % NS_PER_S);
		rv         = pthread_cond_timedwait(cv, &q->mtx, &ts);
	}
	if (rv != 0 && rv != ETIMEDOUT)
		mcf_panic("workqueue: pthread_cond_wait failed");
}

/* Monotonic deadline for a relative timeout; -1 for none.  Saturates. */
static int64_t
deadline_ns(int64_t timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	int64_t now = now_ns();
	if (timeout_ms > (INT64_MAX - now) / NS_PER_MS)
		return INT64_MAX / 2;
	return now + timeout_ms * NS_PER_MS;
}

/* ---- histograms ---- */

double
mcf_wq_hist_bound(int i)
{
	/* 10e-9 * 10^i, as prometheus.ExponentialBuckets(10e-9, 10, 10). */
	static const double bounds[MCF_WQ_HIST_BUCKETS]
	    = { 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0 };
	if (i < 0 || i >= MCF_WQ_HIST_BUCKETS)
		return INFINITY;
	return bounds[i];
}

static void
hist_observe(mcf_wq_hist *h, int64_t ns)
{
	double s = (double) ns / (double) NS_PER_S;
	for (int i = 0; i < MCF_WQ_HIST_BUCKETS; i++)
		if (s <= mcf_wq_hist_bound(i))
			h->bucket[i]++;
	h->count++;
	h->sum += s;
}

/* ---- hash table ---- */

static uint64_t
hash_key(const char *s)
{
	/* FNV-1a, 64 bit. */
	uint64_t h = UINT64_C(14695981039346656037);
	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static wq_item *
item_find_locked(mcf_wq *q, const char *key)
{
	uint64_t h  = hash_key(key);
	wq_item *it = q->tab[h & (q->tab_size - 1)];
	while (it != NULL && (it->hash != h || strcmp(it->key, key) != 0))
		it = it->chain;
	return it;
}

static void
tab_grow_locked(mcf_wq *q)
{
	size_t    nsize = q->tab_size * 2;
	wq_item **ntab  = mcf_calloc(nsize, sizeof(*ntab));
	for (size_t i = 0; i < q->tab_size; i++) {
		wq_item *it = q->tab[i];
		while (it != NULL) {
			wq_item *next = it->chain;
			size_t   b    = it->hash & (nsize - 1);
			it->chain     = ntab[b];
			ntab[b]       = it;
			it            = next;
		}
	}
	free(q->tab);
	q->tab      = ntab;
	q->tab_size = nsize;
}

/* Finds the item for `key`, creating an idle one if there is none. */
static wq_item *
item_get_locked(mcf_wq *q, const char *key)
{
	wq_item *it = item_find_locked(q, key);
	if (it != NULL)
		return it;
	if (q->nitems + 1 > q->tab_size)
		tab_grow_locked(q);
	it           = mcf_calloc(1, sizeof(*it));
	it->key      = mcf_strdup(key);
	it->hash     = hash_key(key);
	it->heap_idx = -1;
	size_t b     = it->hash & (q->tab_size - 1);
	it->chain    = q->tab[b];
	q->tab[b]    = it;
	q->nitems++;
	return it;
}

/* Frees `it` if no state keeps it alive. */
static void
item_release_locked(mcf_wq *q, wq_item *it)
{
	if (it->dirty || it->processing || it->failures != 0
	    || it->heap_idx >= 0)
		return;
	wq_item **pp = &q->tab[it->hash & (q->tab_size - 1)];
	while (*pp != it)
		pp = &(*pp)->chain;
	*pp = it->chain;
	q->nitems--;
	free(it->key);
	free(it);
}

/* ---- delay heap ---- */

/* True if `a` is due before `b`. */
static bool
heap_less(const wq_item *a, const wq_item *b)
{
	if (a->ready_ns != b->ready_ns)
		return a->ready_ns < b->ready_ns;
	return a->heap_seq < b->heap_seq;
}

static void
heap_set(mcf_wq *q, size_t i, wq_item *it)
{
	q->heap[i]   = it;
	it->heap_idx = (ptrdiff_t) i;
}

static void
heap_up(mcf_wq *q, size_t i)
{
	wq_item *it = q->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(it, q->heap[p]))
			break;
		heap_set(q, i, q->heap[p]);
		i = p;
	}
	heap_set(q, i, it);
}

static void
heap_down(mcf_wq *q, size_t i)
{
	wq_item *it = q->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->heap_len)
			break;
		if (c + 1 < q->heap_len
		    && heap_less(q->heap[c + 1], q->heap[c]))
			c++;
		if (!heap_less(q->heap[c], it))
			break;
		heap_set(q, i, q->heap[c]);
		i = c;
	}
	heap_set(q, i, it);
}

static void
heap_push_locked(mcf_wq *q, wq_item *it)
{
	if (q->heap_len == q->heap_cap) {
		q->heap_cap = q->heap_cap == 0 ? 16 : q->heap_cap * 2;
		q->heap = mcf_realloc(q->heap, q->heap_cap * sizeof(*q->heap));
	}
	it->heap_seq         = q->heap_seq++;
	q->heap[q->heap_len] = it;
	q->heap_len++;
	heap_up(q, q->heap_len - 1);
}

static wq_item *
heap_pop_locked(mcf_wq *q)
{
	wq_item *top = q->heap[0];
	q->heap_len--;
	if (q->heap_len > 0) {
		q->heap[0] = q->heap[q->heap_len];
		heap_down(q, 0);
	}
	top->heap_idx = -1;
	return top;
}

/* ---- the queue proper ---- */

/* Appends `it` to the FIFO and wakes one getter. */
static void
enqueue_locked(mcf_wq *q, wq_item *it)
{
	/* Dedup and the processing check keep an item off the FIFO twice. */
	assert(it->dirty && !it->queued && !it->processing);
	it->queued = true;
	it->qnext  = NULL;
	if (q->qtail != NULL)
		q->qtail->qnext = it;
	else
		q->qhead = it;
	q->qtail = it;
	q->depth++;
	pthread_cond_signal(&q->cv);
}

/* client-go Type.Add on an existing item; `at_ns` is the time it counts as
 * added from (workqueue_queue_duration_seconds starts there). */
static void
add_item_locked(mcf_wq *q, wq_item *it, int64_t at_ns)
{
	if (it->dirty)
		return;
	it->dirty  = true;
	it->add_ns = at_ns;
	q->adds_total++;
	if (!it->processing)
		enqueue_locked(q, it);
}

/* Moves every delayed item whose time has come onto the FIFO. */
static void
promote_locked(mcf_wq *q, int64_t now)
{
	if (q->closed)
		return;
	while (q->heap_len > 0 && q->heap[0]->ready_ns <= now) {
		wq_item *it = heap_pop_locked(q);
		add_item_locked(q, it, it->ready_ns);
		item_release_locked(q, it);
	}
}

static void
add_after_locked(mcf_wq *q, const char *key, int64_t delay_ns)
{
	int64_t  now = now_ns();
	wq_item *it  = item_get_locked(q, key);
	q->retries_total++;
	if (delay_ns <= 0) {
		add_item_locked(q, it, now);
		return;
	}
	int64_t ready = now + delay_ns;
	if (it->heap_idx >= 0) {
		/* Keep the earlier ready time, as client-go does. */
		if (ready >= it->ready_ns)
			return;
		it->ready_ns = ready;
		heap_up(q, (size_t) it->heap_idx);
	} else {
		it->ready_ns = ready;
		heap_push_locked(q, it);
	}
	/* A new earliest deadline: sleeping getters must wake sooner. */
	if (q->heap[0] == it)
		pthread_cond_broadcast(&q->cv);
}

/* The rate limiter's delay for `it` (MaxOf(exponential, bucket)); counts
 * the failure and takes a token. */
static int64_t
when_locked(mcf_wq *q, wq_item *it)
{
	int64_t backoff = q->max_ns;
	if (it->failures < 62 && q->base_ns <= (q->max_ns >> it->failures))
		backoff = q->base_ns << it->failures;
	if (it->failures < UINT32_MAX)
		it->failures++;

	int64_t bucket = 0;
	if (q->qps > 0) {
		/* golang.org/x/time/rate reservations: tokens refill at qps
		 * up to burst, and may go negative; a negative balance is
		 * the wait until this reservation's token exists. */
		int64_t now = now_ns();
		if (now > q->tokens_ns) {
			q->tokens
			    += (double) (now - q->tokens_ns) / 1e9 * q->qps;
			if (q->tokens > q->burst)
				q->tokens = q->burst;
			q->tokens_ns = now;
		}
		q->tokens -= 1.0;
		if (q->tokens < 0) {
			double w = -q->tokens / q->qps * 1e9;
			bucket   = (int64_t) w;
			if ((double) bucket < w)
				bucket++;
		}
	}
	return backoff > bucket ? backoff : bucket;
}

/* ---- public API ---- */

void
mcf_wq_opts_init(mcf_wq_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name          = NULL;
	o->base_delay_ms = 5;
	o->max_delay_ms  = 1000 * 1000;
	o->qps           = 10.0;
	o->burst         = 100;
}

int
mcf_wq_create(mcf_wq **out, const mcf_wq_opts *opts)
{
	mcf_wq_opts o;
	if (opts != NULL)
		o = *opts;
	else
		mcf_wq_opts_init(&o);
	if (o.base_delay_ms <= 0 || o.max_delay_ms < o.base_delay_ms
	    || o.max_delay_ms > INT64_MAX / NS_PER_MS
	    || (o.qps > 0 && o.burst < 1) || isnan(o.qps))
		return MCF_EINVAL;

	mcf_wq *q = mcf_calloc(1, sizeof(*q));
	if (pthread_mutex_init(&q->mtx, NULL) != 0)
		mcf_panic("workqueue: pthread_mutex_init failed");
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0
	    || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0
	    || pthread_cond_init(&q->cv, &ca) != 0
	    || pthread_cond_init(&q->idle_cv, &ca) != 0)
		mcf_panic("workqueue: pthread_cond_init failed");
	pthread_condattr_destroy(&ca);

	q->name      = mcf_strdup(o.name != NULL ? o.name : "");
	q->base_ns   = o.base_delay_ms * NS_PER_MS;
	q->max_ns    = o.max_delay_ms * NS_PER_MS;
	q->qps       = o.qps;
	q->burst     = o.burst;
	q->tokens    = o.burst;
	q->tokens_ns = now_ns();
	q->tab_size  = 64;
	q->tab       = mcf_calloc(q->tab_size, sizeof(*q->tab));
	*out         = q;
	return MCF_OK;
}

int
mcf_wq_add(mcf_wq *q, const char *key)
{
	if (key == NULL)
		return MCF_EINVAL;
	wq_lock(q);
	if (q->closed) {
		wq_unlock(q);
		return MCF_ECLOSED;
	}
	add_item_locked(q, item_get_locked(q, key), now_ns());
	wq_unlock(q);
	return MCF_OK;
}

int
mcf_wq_add_after(mcf_wq *q, const char *key, int64_t delay_ms)
{
	if (key == NULL)
		return MCF_EINVAL;
	int64_t delay_ns = delay_ms;
	if (delay_ms > INT64_MAX / 4 / NS_PER_MS)
		delay_ns = INT64_MAX / 4;
	else if (delay_ms > 0)
		delay_ns = delay_ms * NS_PER_MS;
	wq_lock(q);
	if (q->closed) {
		wq_unlock(q);
		return MCF_ECLOSED;
	}
	add_after_locked(q, key, delay_ns);
	wq_unlock(q);
	return MCF_OK;
}

int
mcf_wq_add_rate_limited(mcf_wq *q, const char *key, int64_t *delay_ms)
{
	if (key == NULL)
		return MCF_EINVAL;
	wq_lock(q);
	if (q->closed) {
		wq_unlock(q);
		return MCF_ECLOSED;
	}
	int64_t d = when_locked(q, item_get_locked(q, key));
	add_after_locked(q, key, d);
	wq_unlock(q);
	if (delay_ms != NULL)
		*delay_ms = (d + NS_PER_MS - 1) / NS_PER_MS;
	return MCF_OK;
}

void
mcf_wq_forget(mcf_wq *q, const char *key)
{
	if (key == NULL)
		return;
	wq_lock(q);
	wq_item *it = item_find_locked(q, key);
	if (it != NULL) {
		it->failures = 0;
		item_release_locked(q, it);
	}
	wq_unlock(q);
}

int
mcf_wq_num_requeues(mcf_wq *q, const char *key)
{
	int n = 0;
	if (key == NULL)
		return 0;
	wq_lock(q);
	wq_item *it = item_find_locked(q, key);
	if (it != NULL)
		n = it->failures > INT_MAX ? INT_MAX : (int) it->failures;
	wq_unlock(q);
	return n;
}

int
mcf_wq_get(mcf_wq *q, int64_t timeout_ms, const char **key_out)
{
	int64_t until = deadline_ns(timeout_ms);
	wq_lock(q);
	for (;;) {
		int64_t now = now_ns();
		promote_locked(q, now);
		if (q->qhead != NULL)
			break;
		if (q->closed) {
			wq_unlock(q);
			return MCF_ECLOSED;
		}
		if (until >= 0 && now >= until) {
			wq_unlock(q);
			return MCF_ETIMEDOUT;
		}
		int64_t wake = until;
		if (q->heap_len > 0
		    && (wake < 0 || q->heap[0]->ready_ns < wake))
			wake = q->heap[0]->ready_ns;
		wq_wait_locked(q, &q->cv, wake);
	}

	wq_item *it = q->qhead;
	q->qhead    = it->qnext;
	if (q->qhead == NULL)
		q->qtail = NULL;
	it->qnext = NULL;
	q->depth--;
	int64_t now = now_ns();
	hist_observe(&q->queue_hist, now - it->add_ns);
	it->queued     = false;
	it->dirty      = false;
	it->processing = true;
	it->start_ns   = now;
	q->nprocessing++;
	*key_out = it->key;
	wq_unlock(q);
	return MCF_OK;
}

int
mcf_wq_done(mcf_wq *q, const char *key)
{
	if (key == NULL)
		return MCF_EINVAL;
	wq_lock(q);
	wq_item *it = item_find_locked(q, key);
	if (it == NULL || !it->processing) {
		wq_unlock(q);
		return MCF_EINVAL;
	}
	/* `key` may point into `it`; it is not used after this point. */
	int64_t now = now_ns();
	hist_observe(&q->work_hist, now - it->start_ns);
	it->processing = false;
	q->nprocessing--;
	if (it->dirty) {
		/* Added while processing: queue it now (client-go Done).  Its
		 * queue time runs from that add. */
		enqueue_locked(q, it);
	}
	item_release_locked(q, it);
	if (q->closed && q->nprocessing == 0 && q->qhead == NULL)
		pthread_cond_broadcast(&q->idle_cv);
	wq_unlock(q);
	return MCF_OK;
}

int64_t
mcf_wq_len(mcf_wq *q)
{
	wq_lock(q);
	promote_locked(q, now_ns());
	int64_t n = q->depth;
	wq_unlock(q);
	return n;
}

void
mcf_wq_count_prefix(mcf_wq *q, const char *prefix, mcf_wq_prefix_count *out)
{
	size_t plen = strlen(prefix);
	out->queued = out->waiting = 0;
	wq_lock(q);
	promote_locked(q, now_ns());
	for (const wq_item *it = q->qhead; it != NULL; it = it->qnext)
		if (strncmp(it->key, prefix, plen) == 0)
			out->queued++;
	for (size_t i = 0; i < q->heap_len; i++)
		if (strncmp(q->heap[i]->key, prefix, plen) == 0)
			out->waiting++;
	wq_unlock(q);
}

void
mcf_wq_metrics_read(mcf_wq *q, mcf_wq_metrics *out)
{
	memset(out, 0, sizeof(*out));
	wq_lock(q);
	int64_t now = now_ns();
	promote_locked(q, now);
	out->depth          = q->depth;
	out->adds_total     = q->adds_total;
	out->retries_total  = q->retries_total;
	out->queue_duration = q->queue_hist;
	out->work_duration  = q->work_hist;
	out->processing     = q->nprocessing;
	out->waiting        = (int64_t) q->heap_len;
	/* Walking the table is O(keys); metrics are read rarely. */
	int64_t longest = 0;
	double  sum     = 0;
	for (size_t i = 0; i < q->tab_size && q->nprocessing > 0; i++)
		for (wq_item *it = q->tab[i]; it != NULL; it = it->chain) {
			if (!it->processing)
				continue;
			int64_t d = now - it->start_ns;
			sum += (double) d / 1e9;
			if (d > longest)
				longest = d;
		}
	wq_unlock(q);
	out->unfinished_work_seconds           = sum;
	out->longest_running_processor_seconds = (double) longest / 1e9;
}

const char *
mcf_wq_name(const mcf_wq *q)
{
	return q->name;
}

void
mcf_wq_close(mcf_wq *q)
{
	wq_lock(q);
	if (!q->closed) {
		q->closed = true;
		/* Delayed keys are dropped, as client-go's delaying queue
		 * stops its waiting loop on shutdown. */
		while (q->heap_len > 0) {
			wq_item *it = heap_pop_locked(q);
			item_release_locked(q, it);
		}
		pthread_cond_broadcast(&q->cv);
		pthread_cond_broadcast(&q->idle_cv);
	}
	wq_unlock(q);
}

int
mcf_wq_stop(mcf_wq *q, int64_t timeout_ms)
{
	int64_t until = deadline_ns(timeout_ms);
	mcf_wq_close(q);
	wq_lock(q);
	while (q->nprocessing > 0 || q->qhead != NULL) {
		if (until >= 0 && now_ns() >= until) {
			wq_unlock(q);
			return MCF_ETIMEDOUT;
		}
		wq_wait_locked(q, &q->idle_cv, until);
	}
	wq_unlock(q);
	return MCF_OK;
}

void
mcf_wq_destroy(mcf_wq *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->tab_size; i++) {
		wq_item *it = q->tab[i];
		while (it != NULL) {
			wq_item *next = it->chain;
			free(it->key);
			free(it);
			it = next;
		}
	}
	free(q->tab);
	free(q->heap);
	free(q->name);
	pthread_cond_destroy(&q->cv);
	pthread_cond_destroy(&q->idle_cv);
	pthread_mutex_destroy(&q->mtx);
	free(q);
}
