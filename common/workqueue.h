/*
 * workqueue.h — a work queue of string keys with client-go semantics.
 *
 * The queue a controller's event handlers feed and its reconcile workers
 * drain, modelled on client-go's workqueue (Type, delaying queue and
 * rate-limiting queue with DefaultControllerRateLimiter):
 *
 *   - Dedup: a key waiting in the queue is held once however often it is
 *     added.
 *   - A key is never handed to two workers at once.  A key added while a
 *     worker processes it is marked dirty and queued again when that
 *     worker calls mcf_wq_done().
 *   - FIFO order among queued keys.
 *   - Delayed adds (mcf_wq_add_after) wait in a min-heap ordered by their
 *     ready time.  There is no timer thread: threads blocked in
 *     mcf_wq_get() sleep on the condition variable with a timed wait that
 *     ends at the earliest ready time, and move due keys into the queue.
 *     Adding an earlier deadline wakes them.  No thread ever spins.
 *   - Rate-limited adds (mcf_wq_add_rate_limited) delay a key by the larger
 *     of a per-key exponential backoff (base_delay_ms doubling per failure
 *     up to max_delay_ms) and an overall token bucket (qps, burst), as
 *     client-go's DefaultControllerRateLimiter (a MaxOfRateLimiter) does.
 *     mcf_wq_forget() resets a key's backoff.
 *   - Shutdown: mcf_wq_close() (client-go ShutDown) makes every later add
 *     fail with MCF_ECLOSED and drops keys still waiting in the delay heap;
 *     mcf_wq_get() goes on handing out the keys already queued and returns
 *     MCF_ECLOSED once the queue is empty.  mcf_wq_stop() (client-go
 *     ShutDownWithDrain) closes and then waits until the queue is empty and
 *     no key is being processed.
 *
 * Thread model: every function except mcf_wq_create() and mcf_wq_destroy()
 * is thread-safe and may be called from any thread (event handlers, NNG
 * callbacks, worker threads).  All state is guarded by one mutex, `mtx`;
 * getters wait on one condition variable and mcf_wq_stop() on another.  No
 * function calls out of the module while holding the lock, and none takes a
 * callback.  The blocking calls are mcf_wq_get() and mcf_wq_stop(), and
 * both take a timeout; the others hold the lock only briefly, so they may
 * be called from NNG callbacks.
 *
 * Ownership: keys passed in are borrowed for the call and copied.  The key
 * returned by mcf_wq_get() is borrowed from the queue and stays valid until
 * the caller passes it to mcf_wq_done().
 */
#ifndef MCF_COMMON_WORKQUEUE_H
#define MCF_COMMON_WORKQUEUE_H

#include <stdint.h>

#include "err.h"

typedef struct mcf_wq mcf_wq;

/* Options for mcf_wq_create().  Fill with mcf_wq_opts_init() first and
 * then change fields; a plain value type, its fields are public. */
typedef struct mcf_wq_opts {
	/* Name for logs and the metrics label ("name" in client-go);
	 * borrowed during mcf_wq_create() and copied.  NULL means "". */
	const char *name;
	/* Per-key exponential backoff: the first rate-limited add of a key
	 * waits base_delay_ms, each further one twice as long, at most
	 * max_delay_ms.  Defaults 5 ms and 1000 s (client-go). */
	int64_t base_delay_ms;
	int64_t max_delay_ms;
	/* Overall token bucket shared by all keys: qps tokens per second,
	 * at most burst saved.  Defaults 10 and 100 (client-go).  qps <= 0
	 * turns the bucket off. */
	double qps;
	int    burst;
} mcf_wq_opts;

/* Number of histogram buckets in mcf_wq_metrics; the upper bounds are
 * client-go's prometheus.ExponentialBuckets(10e-9, 10, 10): 1e-8 s,
 * 1e-7 s, ..., 10 s, and +Inf is the count. */
#define MCF_WQ_HIST_BUCKETS 10

/* A histogram of durations in seconds, in Prometheus form: `bucket[i]`
 * counts observations <= mcf_wq_hist_bound(i) (cumulative). */
typedef struct mcf_wq_hist {
	uint64_t bucket[MCF_WQ_HIST_BUCKETS];
	uint64_t count;
	double   sum;
} mcf_wq_hist;

/* A snapshot of the queue's metrics, each field named for the client-go
 * workqueue metric it feeds.  A plain value type. */
typedef struct mcf_wq_metrics {
	/* workqueue_depth: keys queued now (not those in the delay heap,
	 * not those being processed unless they are also queued). */
	int64_t depth;
	/* workqueue_adds_total: adds that queued a key (dedup-ed adds are
	 * not counted, as in client-go). */
	uint64_t adds_total;
	/* workqueue_retries_total: delayed and rate-limited adds. */
	uint64_t retries_total;
	/* workqueue_queue_duration_seconds: time from a key being added
	 * (for a delayed key: from its ready time) to a worker getting
	 * it. */
	mcf_wq_hist queue_duration;
	/* workqueue_work_duration_seconds: time from get to done. */
	mcf_wq_hist work_duration;
	/* workqueue_unfinished_work_seconds: summed time the keys being
	 * processed now have been processed so far. */
	double unfinished_work_seconds;
	/* workqueue_longest_running_processor_seconds: the longest of
	 * those. */
	double longest_running_processor_seconds;
	/* Keys being processed now (no client-go metric; for tests and
	 * readiness). */
	int64_t processing;
	/* Keys waiting in the delay heap. */
	int64_t waiting;
} mcf_wq_metrics;

/* Fills `o` with the defaults above. */
void mcf_wq_opts_init(mcf_wq_opts *o);

/* Upper bound in seconds of histogram bucket `i` (0 <= i <
 * MCF_WQ_HIST_BUCKETS). */
double mcf_wq_hist_bound(int i);

/* Creates a queue.  `opts` is borrowed for the call; NULL means the
 * defaults.  Rejects base_delay_ms <= 0, max_delay_ms < base_delay_ms, and
 * burst < 1 with a bucket on, with MCF_EINVAL; *out is untouched then.
 * On success *out is new: the caller destroys it. */
int mcf_wq_create(mcf_wq **out, const mcf_wq_opts *opts);

/* Adds `key` (borrowed, copied).  If the key is already queued this does
 * nothing; if it is being processed it is queued again after
 * mcf_wq_done().  Returns MCF_OK, MCF_EINVAL for a NULL key, MCF_ECLOSED
 * after mcf_wq_close(). */
int mcf_wq_add(mcf_wq *q, const char *key);

/* Adds `key` once `delay_ms` milliseconds have passed; delay_ms <= 0 adds
 * at once.  A key already waiting keeps the earlier of its two ready
 * times.  Counts a retry.  Errors as mcf_wq_add(). */
int mcf_wq_add_after(mcf_wq *q, const char *key, int64_t delay_ms);

/* Adds `key` after the rate limiter's delay: the larger of the key's
 * backoff (base_delay_ms * 2^n for the key's n-th rate-limited add since
 * it was last forgotten, at most max_delay_ms) and the token bucket's wait.
 * Takes a bucket token even when the backoff is longer, as client-go does.
 * If `delay_ms` is not NULL it receives the delay chosen, rounded up to a
 * millisecond.  Errors as mcf_wq_add(); on error nothing changes. */
int mcf_wq_add_rate_limited(mcf_wq *q, const char *key, int64_t *delay_ms);

/* Resets the backoff of `key` (client-go Forget): call it when the key was
 * processed successfully.  Does not touch the token bucket, and does not
 * remove the key from the queue or the delay heap. */
void mcf_wq_forget(mcf_wq *q, const char *key);

/* Number of rate-limited adds of `key` since it was last forgotten
 * (client-go NumRequeues). */
int mcf_wq_num_requeues(mcf_wq *q, const char *key);

/* Waits for a key and hands it to the caller, who must pass it to
 * mcf_wq_done() when finished.  `timeout_ms` < 0 waits without limit, 0
 * does not wait.  On success *key_out is borrowed until mcf_wq_done().
 * Returns MCF_ETIMEDOUT when the timeout passes with no key, MCF_ECLOSED
 * once the queue is closed and empty; *key_out is untouched then. */
int mcf_wq_get(mcf_wq *q, int64_t timeout_ms, const char **key_out);

/* Marks `key` as no longer being processed; if it was added meanwhile,
 * queues it again.  `key` may be the pointer mcf_wq_get() returned; it is
 * invalid after this call.  Returns MCF_EINVAL if the key is not being
 * processed (a programming error in the caller). */
int mcf_wq_done(mcf_wq *q, const char *key);

/* Number of keys queued now (workqueue_depth). */
int64_t mcf_wq_len(mcf_wq *q);

/* Keys queued now (as mcf_wq_len) and keys waiting in the delay heap
 * whose key starts with `prefix`: a walk over both, O(depth + waiting),
 * for status pages, not hot paths. */
typedef struct mcf_wq_prefix_count {
	int64_t queued;
	int64_t waiting;
} mcf_wq_prefix_count;
void mcf_wq_count_prefix(
    mcf_wq *q, const char *prefix, mcf_wq_prefix_count *out);

/* Copies the current metrics into *out. */
void mcf_wq_metrics_read(mcf_wq *q, mcf_wq_metrics *out);

/* The name given at creation; borrowed until mcf_wq_destroy(). */
const char *mcf_wq_name(const mcf_wq *q);

/* client-go ShutDown: idempotent, does not block.  Later adds fail with
 * MCF_ECLOSED, keys in the delay heap are dropped, and blocked getters
 * wake: they take the keys still queued and then get MCF_ECLOSED. */
void mcf_wq_close(mcf_wq *q);

/* client-go ShutDownWithDrain: closes, then waits until the queue is empty
 * and every key handed out has been passed to mcf_wq_done() (workers must
 * keep calling mcf_wq_get() for that).  `timeout_ms` < 0 waits without
 * limit.  Returns MCF_OK or MCF_ETIMEDOUT. */
int mcf_wq_stop(mcf_wq *q, int64_t timeout_ms);

/* Frees the queue and every key in it.  Accepts NULL.  No other thread may
 * be inside, or later call, any mcf_wq_ function on `q`; keys returned by
 * mcf_wq_get() become invalid. */
void mcf_wq_destroy(mcf_wq *q);

#endif /* MCF_COMMON_WORKQUEUE_H */
