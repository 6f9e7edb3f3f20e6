/*
 * informer.c — shared informers on one curl_multi event loop.
 *
 * The loop.  One thread runs epoll over the sockets libcurl asks for
 * (CURLMOPT_SOCKETFUNCTION) plus one eventfd, and calls
 * curl_multi_socket_action for the socket that is ready, so the work per
 * wake-up is proportional to the active sockets, not to the number of
 * informers (curl_multi_perform and curl_multi_poll walk every transfer
 * on every call, which does not scale to thousands of idle watches).
 * The eventfd is the loop's wake-up: other threads queue commands (start,
 * stop, deliver initial adds) under the loop mutex and write to it — the
 * role curl_multi_wakeup plays for curl_multi_poll.  Timers: libcurl's
 * own (CURLMOPT_TIMERFUNCTION) and a min-heap of informer timers (retry
 * after backoff, resync) bound the epoll timeout.
 *
 * An informer is a small state machine run by the loop thread only:
 *   LIST   one page request in flight; pages accumulate in `staging`;
 *          the last page is merged into the cache as a difference
 *   WATCH  one watch request in flight; its bytes go through the
 *          watchstream parser, and the events of each chunk are applied
 *          as soon as the parser is done with it
 *   WAIT   a retry timer is armed (backoff), then LIST or WATCH again
 * Each informer has at most one transfer, on one easy handle that is
 * reset and reconfigured (mcf_kc_easy_setup) for every request; the
 * multi handle pools connections, so a watch renewed after a clean end
 * reuses its connection.  Handlers run inside libcurl's write callback;
 * nothing there calls back into libcurl, and a watch is stopped from the
 * callback by returning a short write.
 *
 * The cache.  Objects sit in an open-addressing hash table keyed by
 * "ns/name" (linear probing, backward-shift deletion: no tombstones, so
 * a steady churn of creates and deletes does not degrade it).  An index
 * maps each value to a bucket holding a pointer set of entries.  An
 * object's index values are not stored: they are recomputed from the old
 * object, which is immutable and still held, when it is replaced or
 * removed.  Every event is O(1): one hash lookup, a few set operations
 * per index.  Readers take the informer's read lock and copy out
 * references, never objects.  The loop thread is the only writer of the
 * object table, so it reads that table without the lock.  References to
 * published objects are taken and dropped with atomic operations only
 * (obj_ref, obj_release), never with jansson's inline helpers, whose
 * plain read of the count races with other threads (see obj_release).
 *
 * Costs, measured with 1 KiB ConfigMaps on this project's 2-core test
 * machine (informer_test's throughput case, tests/bench/controller_bench):
 * about 70,000 update events and 39,000-42,000 create events per CPU
 * second of the loop thread.  Decoding (jansson, inside mcf_ws_feed) and,
 * for creates, the allocator growing the heap by ~3 KB per cached tree
 * take over 90% of it; the informer's own work (hashing, indexes,
 * locks, dispatch) is about 7%.
 *
 * Locks, in the order they may nest: inf->hmtx (dispatch: held while
 * handlers run), then inf->rw (the cache) or loop->mtx (registry, command
 * queue, reference counts; a handler adding a handler posts a command);
 * nothing is taken while rw, loop->mtx or inf->sync_mtx is held.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "informer.h"
#include "kclient.h"
#include "log.h"
#include "watchstream.h"

#define INF_DEFAULT_PAGE 500
#define INF_DEFAULT_MAX_EVENT ((size_t) 16 << 20)
#define INF_DEFAULT_BACKOFF_MS 800
#define INF_DEFAULT_BACKOFF_MAX_MS 30000
#define INF_DEFAULT_LIST_TIMEOUT_MS 60000
#define INF_CONNECT_TIMEOUT_MS 10000
/* A watch gets this long beyond its timeoutSeconds before the client
 * gives up on a server that neither sends nor closes. */
#define INF_WATCH_GRACE_MS 15000
/* Largest LIST page body accepted. */
#define INF_MAX_LIST_BODY ((size_t) 1 << 30)
/* A clean watch end sooner than this with no event is treated as a
 * failure (client-go's "very short watch"), so a server that closes at
 * once cannot make the loop spin. */
#define INF_SHORT_WATCH_MS 1000
#define INF_KEY_MAX 1024
/* libcurl's receive buffer per transfer.  Its default, 16 KiB, cost a
 * third of the throughput of a busy stream (measured: ~48k against ~72k
 * events per CPU second for 1 KiB objects); 64 KiB was as fast as 128 or
 * 256.  A quiet watch only touches the first pages of it. */
#define INF_RECV_BUFFER (64 * 1024)

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
mtx_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("pthread_mutex_lock");
}

static void
mtx_unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("pthread_mutex_unlock");
}

static void
rd_lock(pthread_rwlock_t *l)
{
	if (pthread_rwlock_rdlock(l) != 0)
		mcf_panic("pthread_rwlock_rdlock");
}

static void
wr_lock(pthread_rwlock_t *l)
{
	if (pthread_rwlock_wrlock(l) != 0)
		mcf_panic("pthread_rwlock_wrlock");
}

static void
rw_unlock(pthread_rwlock_t *l)
{
	if (pthread_rwlock_unlock(l) != 0)
		mcf_panic("pthread_rwlock_unlock");
}

/* ---- hashing --------------------------------------------------------- */

static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* FNV-1a over the bytes, then a full avalanche so that the low bits the
 * tables use depend on every byte. */
static uint64_t
hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char) s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ n);
}

/* ---- string map: key bytes -> pointer -------------------------------- */

/* Open addressing, linear probing, power-of-two capacity, load at most
 * 3/4; deletion shifts the following run back, so there are no
 * tombstones.  Keys are borrowed from the values (an entry's key lives in
 * the entry).  Not thread-safe. */
typedef struct smap_slot {
	uint64_t    hash;
	const char *key; /* NULL: empty */
	size_t      klen;
	void       *val;
} smap_slot;

typedef struct smap {
	smap_slot *s; /* owned */
	size_t     cap, n;
} smap;

static void
smap_fini(smap *m)
{
	free(m->s);
	m->s   = NULL;
	m->cap = m->n = 0;
}

static size_t
smap_find(const smap *m, const char *k, size_t kl, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const smap_slot *e = &m->s[i];
		if (e->key == NULL)
			return SIZE_MAX;
		if (e->hash == h && e->klen == kl
		    && memcmp(e->key, k, kl) == 0)
			return i;
	}
}

static void *
smap_get(const smap *m, const char *k, size_t kl, uint64_t h)
{
	if (m->n == 0)
		return NULL;
	size_t i = smap_find(m, k, kl, h);
	return i == SIZE_MAX ? NULL : m->s[i].val;
}

static void
smap_insert_raw(smap *m, const smap_slot *e)
{
	size_t mask = m->cap - 1;
	size_t i    = e->hash & mask;
	while (m->s[i].key != NULL)
		i = (i + 1) & mask;
	m->s[i] = *e;
}

static void
smap_grow(smap *m)
{
	size_t     ncap = m->cap ? m->cap * 2 : 16;
	smap_slot *old  = m->s;
	size_t     ocap = m->cap;
	m->s            = mcf_calloc(ncap, sizeof(*m->s));
	m->cap          = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key != NULL)
			smap_insert_raw(m, &old[i]);
	free(old);
}

/* Inserts, or replaces the key pointer and value of an equal key; returns
 * the previous value or NULL. */
static void *
smap_put(smap *m, const char *k, size_t kl, uint64_t h, void *v)
{
	if (m->n > 0) {
		size_t i = smap_find(m, k, kl, h);
		if (i != SIZE_MAX) {
			void *old   = m->s[i].val;
			m->s[i].key = k;
			m->s[i].val = v;
			return old;
		}
	}
	if ((m->n + 1) * 4 > m->cap * 3)
		smap_grow(m);
	smap_slot e = { h, k, kl, v };
	smap_insert_raw(m, &e);
	m->n++;
	return NULL;
}

/* Removes the key; returns its value or NULL. */
static void *
smap_del(smap *m, const char *k, size_t kl, uint64_t h)
{
	if (m->n == 0)
		return NULL;
	size_t i = smap_find(m, k, kl, h);
	if (i == SIZE_MAX)
		return NULL;
	void  *v    = m->s[i].val;
	size_t mask = m->cap - 1;
	/* Backward shift: move later members of the run into the hole when
	 * their home slot is not between the hole and them. */
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (m->s[j].key == NULL)
			break;
		size_t home = m->s[j].hash & mask;
		bool   move = (j > i) ? (home <= i || home > j)
		                      : (home <= i && home > j);
		if (move) {
			m->s[i] = m->s[j];
			i       = j;
		}
	}
	m->s[i].key = NULL;
	m->n--;
	return v;
}

/* ---- pointer set ----------------------------------------------------- */

/* Same scheme as smap for non-NULL pointers. */
typedef struct pset {
	void **s; /* owned */
	size_t cap, n;
} pset;

static uint64_t
ptr_hash(const void *p)
{
	return mix64((uint64_t) (uintptr_t) p);
}

static void
pset_fini(pset *p)
{
	free(p->s);
	p->s   = NULL;
	p->cap = p->n = 0;
}

static void
pset_insert_raw(pset *p, void *v)
{
	size_t mask = p->cap - 1;
	size_t i    = ptr_hash(v) & mask;
	while (p->s[i] != NULL) {
		if (p->s[i] == v)
			return;
		i = (i + 1) & mask;
	}
	p->s[i] = v;
	p->n++;
}

static void
pset_add(pset *p, void *v)
{
	if ((p->n + 1) * 4 > p->cap * 3) {
		void **old  = p->s;
		size_t ocap = p->cap;
		p->cap      = ocap ? ocap * 2 : 4;
		p->s        = mcf_calloc(p->cap, sizeof(*p->s));
		p->n        = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i] != NULL)
				pset_insert_raw(p, old[i]);
		free(old);
	}
	pset_insert_raw(p, v);
}

static void
pset_del(pset *p, void *v)
{
	if (p->n == 0)
		return;
	size_t mask = p->cap - 1;
	size_t i    = ptr_hash(v) & mask;
	while (p->s[i] != v) {
		if (p->s[i] == NULL)
			return;
		i = (i + 1) & mask;
	}
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (p->s[j] == NULL)
			break;
		size_t home = ptr_hash(p->s[j]) & mask;
		bool   move = (j > i) ? (home <= i || home > j)
		                      : (home <= i && home > j);
		if (move) {
			p->s[i] = p->s[j];
			i       = j;
		}
	}
	p->s[i] = NULL;
	p->n--;
}

/* ---- byte buffer ----------------------------------------------------- */

typedef struct inf_buf {
	char  *p; /* owned */
	size_t n, cap;
} inf_buf;

static void
buf_add(inf_buf *b, const char *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		b->p   = mcf_realloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
buf_adds(inf_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Appends `s` percent-encoded (RFC 3986 unreserved characters stay). */
static void
buf_add_enc(inf_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		bool keep = (*p >= 'a' && *p <= 'z')
		    || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
		    || *p == '-' || *p == '.' || *p == '_' || *p == '~';
		if (keep) {
			buf_add(b, (const char *) p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_add(b, e, 3);
		}
	}
}

static void
buf_add_query(inf_buf *b, const char *key, const char *val)
{
	if (val == NULL || val[0] == '\0')
		return;
	buf_adds(b, strchr(b->p, '?') ? "&" : "?");
	buf_adds(b, key);
	buf_adds(b, "=");
	buf_add_enc(b, val);
}

/* ---- shared objects -------------------------------------------------- */

/* Drops one reference to an object readers may share.  It is
 * json_decref with an acquire-release decrement and no plain read of the
 * count: jansson's inline json_decref reads `refcount` without an atomic
 * and decrements with release order only, which is sound on the
 * hardware we run on but is a data race in the C11 model, and
 * ThreadSanitizer reports it when a reader and the loop drop the same
 * object.  The thread that drops the last reference acquires every other
 * thread's accesses before json_delete frees it (what json_decref would
 * call; jansson's "do not call json_delete directly" is about skipping
 * the count, which this does not). */
static void
obj_release(json_t *obj)
{
	if (obj == NULL
	    || __atomic_load_n(&obj->refcount, __ATOMIC_RELAXED)
	        == (size_t) -1)
		return;
	if (__atomic_sub_fetch(&obj->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		json_delete(obj);
}

/* json_incref without the plain read of the count, for the same reason:
 * readers take references to published objects concurrently. */
static json_t *
obj_ref(json_t *obj)
{
	if (obj != NULL
	    && __atomic_load_n(&obj->refcount, __ATOMIC_RELAXED)
	        != (size_t) -1)
		__atomic_fetch_add(&obj->refcount, 1, __ATOMIC_RELAXED);
	return obj;
}

/* ---- cache entries and indexes -------------------------------------- */

typedef struct inf_ent {
	json_t  *obj;  /* owned reference; never modified */
	uint64_t hash; /* of key */
	size_t   klen;
	char     key[]; /* "ns/name" or "name", NUL-terminated */
} inf_ent;

typedef struct inf_bucket {
	pset     ents; /* inf_ent * (borrowed from the object table) */
	uint64_t hash;
	size_t   vlen;
	char     value[];
} inf_bucket;

typedef struct inf_index {
	char            *name; /* owned */
	mcf_inf_index_fn fn;
	void            *arg;     /* borrowed */
	smap             buckets; /* value -> inf_bucket * (owned) */
} inf_index;

/* Index values of `obj`: into `stack` (room for `cap`) or, when the
 * function wants more, into a new array in `*heap` (caller frees). */
static size_t
idx_values(const inf_index *x, const json_t *obj, const char **stack,
    size_t cap, const char ***vals, const char ***heap)
{
	*heap    = NULL;
	*vals    = stack;
	size_t n = x->fn(obj, stack, cap, x->arg);
	if (n > cap) {
		size_t want = n;
		*heap       = mcf_calloc(want, sizeof(**heap));
		n           = x->fn(obj, *heap, want, x->arg);
		if (n > want)
			n = want;
		*vals = *heap;
	}
	return n;
}

static void
idx_link(inf_index *x, inf_ent *e, const char *v)
{
	if (v == NULL)
		return;
	size_t      vl = strlen(v);
	uint64_t    h  = hash_bytes(v, vl);
	inf_bucket *b  = smap_get(&x->buckets, v, vl, h);
	if (b == NULL) {
		b       = mcf_calloc(1, sizeof(*b) + vl + 1);
		b->hash = h;
		b->vlen = vl;
		memcpy(b->value, v, vl + 1);
		smap_put(&x->buckets, b->value, vl, h, b);
	}
	pset_add(&b->ents, e);
}

static void
idx_unlink(inf_index *x, inf_ent *e, const char *v)
{
	if (v == NULL)
		return;
	size_t      vl = strlen(v);
	uint64_t    h  = hash_bytes(v, vl);
	inf_bucket *b  = smap_get(&x->buckets, v, vl, h);
	if (b == NULL)
		return;
	pset_del(&b->ents, e);
	if (b->ents.n == 0) {
		smap_del(&x->buckets, b->value, b->vlen, b->hash);
		pset_fini(&b->ents);
		free(b);
	}
}

#define IDX_STACK 8

/* Moves `e` in index `x` from the values of `old_obj` (NULL: none) to
 * those of `new_obj` (NULL: none).  Write lock held. */
static void
idx_update(
    inf_index *x, inf_ent *e, const json_t *old_obj, const json_t *new_obj)
{
	const char  *s_old[IDX_STACK], *s_new[IDX_STACK];
	const char **v_old = NULL, **v_new = NULL, **h_old = NULL,
	           **h_new = NULL;
	size_t n_old = 0, n_new = 0;
	if (old_obj != NULL)
		n_old
		    = idx_values(x, old_obj, s_old, IDX_STACK, &v_old, &h_old);
	if (new_obj != NULL)
		n_new
		    = idx_values(x, new_obj, s_new, IDX_STACK, &v_new, &h_new);
	bool same = n_old == n_new;
	for (size_t i = 0; same && i < n_old; i++)
		same = (v_old[i] == NULL && v_new[i] == NULL)
		    || (v_old[i] != NULL && v_new[i] != NULL
		        && strcmp(v_old[i], v_new[i]) == 0);
	if (!same) {
		for (size_t i = 0; i < n_old; i++)
			idx_unlink(x, e, v_old[i]);
		for (size_t i = 0; i < n_new; i++)
			idx_link(x, e, v_new[i]);
	}
	free(h_old);
	free(h_new);
}

static void
idx_free(inf_index *x)
{
	for (size_t i = 0; i < x->buckets.cap; i++) {
		if (x->buckets.s[i].key == NULL)
			continue;
		inf_bucket *b = x->buckets.s[i].val;
		pset_fini(&b->ents);
		free(b);
	}
	smap_fini(&x->buckets);
	free(x->name);
	free(x);
}

static size_t
index_namespace(const json_t *obj, const char **out, size_t cap, void *arg)
{
	(void) arg;
	const char *ns = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), "namespace"));
	if (ns == NULL || ns[0] == '\0')
		return 0;
	if (cap > 0)
		out[0] = ns;
	return 1;
}

static size_t
index_owner_uid(const json_t *obj, const char **out, size_t cap, void *arg)
{
	(void) arg;
	const json_t *refs = json_object_get(
	    json_object_get(obj, "metadata"), "ownerReferences");
	size_t        n = 0, i;
	const json_t *r;
	if (!json_is_array(refs))
		return 0;
	json_array_foreach(refs, i, r)
	{
		const char *uid = json_string_value(json_object_get(r, "uid"));
		if (uid == NULL || uid[0] == '\0')
			continue;
		if (n < cap)
			out[n] = uid;
		n++;
	}
	return n;
}

/* ---- informer and loop ---------------------------------------------- */

enum inf_state { ST_IDLE, ST_LIST, ST_WATCH, ST_WAIT, ST_STOPPED };
enum inf_req { REQ_NONE, REQ_LIST, REQ_WATCH };
enum inf_cmd { CMD_START = 1, CMD_STOP = 2, CMD_HANDLERS = 4 };
enum inf_timer_kind { TM_RETRY, TM_RESYNC };
/* What a retry timer starts. */
enum inf_retry {
	RT_LIST,        /* the pending list page, or a list from scratch */
	RT_WATCH,       /* a watch from the last resourceVersion */
	RT_RELIST,      /* a list from scratch (404, 504) */
	RT_RELIST_GONE, /* a list from scratch after a 410 */
};

typedef struct inf_timer {
	int64_t  at;
	size_t   hidx; /* position in the loop's heap; SIZE_MAX: not armed */
	mcf_inf *inf;  /* borrowed: the informer embedding this timer */
	int      kind;
} inf_timer;

/* A watch event waiting to be applied. */
typedef struct inf_pend {
	int     type; /* mcf_ws_type */
	json_t *obj;  /* owned */
} inf_pend;

typedef struct inf_hdl {
	mcf_inf_handler h;
	uint64_t        id;
	bool            pending; /* initial adds not delivered yet */
} inf_hdl;

struct mcf_inf_loop {
	pthread_t thread;
	int       epfd;  /* owned */
	int       evfd;  /* owned: wake-up */
	CURLM    *multi; /* owned; loop thread only */
	/* Loop thread only. */
	int64_t     curl_at; /* libcurl's timer deadline, -1 none */
	inf_timer **heap;    /* owned array of borrowed timers */
	size_t      nheap, heap_cap;
	/* Under mtx. */
	pthread_mutex_t mtx;
	smap            reg; /* key -> mcf_inf * (borrowed: live informers) */
	mcf_inf        *q_head, *q_tail; /* informers with commands */
	bool            stop;
};

struct mcf_inf {
	mcf_inf_loop *loop; /* borrowed: outlives the informer */

	/* Identity and configuration, immutable after acquire. */
	char    *key; /* owned: '\0'-separated key fields */
	size_t   klen;
	uint64_t khash;
	char    *desc;     /* owned: "cluster/group/version/resource in ns" */
	char    *base_url; /* owned: collection URL, no query */
	char    *lsel, *fsel; /* owned or NULL */
	int64_t  page_size, resync_ms, backoff_ms, backoff_max_ms,
	    list_timeout_ms;
	int     watch_timeout_s;
	size_t  max_event;
	mcf_kc *kc; /* owned; after acquire used by the loop thread only */

	/* Under loop->mtx. */
	int            refs;
	unsigned       cmds;
	bool           queued;
	mcf_inf       *q_next;
	bool           stopped;
	pthread_cond_t stop_cv;

	/* Cache, under rw (written by the loop thread and add_index). */
	pthread_rwlock_t rw;
	smap             objs; /* key -> inf_ent * (owned) */
	inf_index      **idx;  /* owned array of owned indexes */
	size_t           nidx;
	mcf_inf_stats    st;

	/* Synced flag; the mutex and condition serve wait_synced. */
	atomic_bool     synced;
	pthread_mutex_t sync_mtx;
	pthread_cond_t  sync_cv;

	/* Handlers, under hmtx, which dispatch holds while they run. */
	pthread_mutex_t hmtx;
	inf_hdl        *hdl; /* owned array */
	size_t          nhdl, hcap;
	uint64_t        next_id;

	/* Loop thread only. */
	int                state;
	int                req;
	CURL              *easy; /* owned */
	struct curl_slist *hdrs; /* owned: headers of the request */
	long               http_code;
	int                retry_after; /* s, from the last answer */
	inf_buf            body;        /* list page or error body */
	bool               body_too_big;
	char               errbuf[CURL_ERROR_SIZE];
	int64_t            req_start;
	mcf_ws            *ws;   /* owned */
	inf_pend          *pend; /* owned: events parsed, not applied yet */
	size_t             npend, pend_cap;
	int                ws_rc; /* parser error that ended the stream */
	mcf_errinfo        ws_ei;
	uint64_t           stream_events; /* events (bookmarks too) in it */
	bool               want_relist;   /* the stream asked for a relist */
	bool               relist_gone;   /* ... because of a 410 */
	bool               watch_failed;  /* an ERROR event other than 410 */
	char               watch_err[256];
	smap               staging; /* key -> inf_ent * (owned): list pages */
	char              *cont;    /* owned: continue token of next page */
	char              *list_rv; /* owned: list's resourceVersion */
	bool               list_gone; /* current list caused by a 410 */
	char              *rv;        /* owned: last resourceVersion */
	size_t             rv_cap;
	unsigned           fails; /* consecutive failures (backoff) */
	unsigned           seed;
	bool               started;  /* first list has completed */
	atomic_bool        hpending; /* handlers wait for initial adds */
	inf_timer          t_retry, t_resync;
	int                retry_what; /* enum inf_retry */
};

/* The informer whose handlers the current thread is running, with hmtx
 * held: lets a handler add handlers, and catches forbidden calls. */
static _Thread_local mcf_inf *tls_dispatch;
/* The loop whose thread this is. */
static _Thread_local mcf_inf_loop *tls_loop;

/* ---- timers (loop thread) ------------------------------------------- */

static void
heap_swap(mcf_inf_loop *L, size_t a, size_t b)
{
	inf_timer *t     = L->heap[a];
	L->heap[a]       = L->heap[b];
	L->heap[b]       = t;
	L->heap[a]->hidx = a;
	L->heap[b]->hidx = b;
}

static void
heap_up(mcf_inf_loop *L, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (L->heap[p]->at <= L->heap[i]->at)
			break;
		heap_swap(L, p, i);
		i = p;
	}
}

static void
heap_down(mcf_inf_loop *L, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < L->nheap && L->heap[l]->at < L->heap[m]->at)
			m = l;
		if (r < L->nheap && L->heap[r]->at < L->heap[m]->at)
			m = r;
		if (m == i)
			break;
		heap_swap(L, i, m);
		i = m;
	}
}

static void
timer_cancel(mcf_inf_loop *L, inf_timer *t)
{
	if (t->hidx == SIZE_MAX)
		return;
	size_t i = t->hidx;
	L->nheap--;
	if (i != L->nheap) {
		L->heap[i]       = L->heap[L->nheap];
		L->heap[i]->hidx = i;
		heap_down(L, i);
		heap_up(L, i);
	}
	t->hidx = SIZE_MAX;
}

static void
timer_arm(mcf_inf_loop *L, inf_timer *t, int64_t at)
{
	timer_cancel(L, t);
	if (L->nheap == L->heap_cap) {
		L->heap_cap = L->heap_cap ? L->heap_cap * 2 : 64;
		L->heap = mcf_realloc(L->heap, L->heap_cap * sizeof(*L->heap));
	}
	t->at               = at;
	t->hidx             = L->nheap;
	L->heap[L->nheap++] = t;
	heap_up(L, t->hidx);
}

/* ---- stats ---------------------------------------------------------- */

/* Records a failure in the stats (takes the write lock). */
static void stats_fail(mcf_inf *inf, int err, int http, bool stream,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
stats_fail(mcf_inf *inf, int err, int http, bool stream, const char *fmt, ...)
{
	char    msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wr_lock(&inf->rw);
	if (stream)
		inf->st.stream_errors++;
	else
		inf->st.request_errors++;
	inf->st.last_err = err;
	if (http != 0)
		inf->st.last_http_code = http;
	snprintf(inf->st.last_error, sizeof(inf->st.last_error), "%s", msg);
	rw_unlock(&inf->rw);
}

static void
stats_ok(mcf_inf *inf, int http)
{
	wr_lock(&inf->rw);
	inf->st.last_err       = 0;
	inf->st.last_http_code = http;
	rw_unlock(&inf->rw);
}

/* Keeps `rv` as the informer's last resourceVersion (loop thread). */
static void
set_rv(mcf_inf *inf, const char *rv)
{
	if (rv == NULL || rv[0] == '\0')
		return;
	size_t n = strlen(rv) + 1;
	if (n > inf->rv_cap) {
		inf->rv_cap = n < 32 ? 32 : n;
		inf->rv     = mcf_realloc(inf->rv, inf->rv_cap);
	}
	memcpy(inf->rv, rv, n);
}

/* Copies `rv` into the stats; write lock held. */
static void
stats_rv_locked(mcf_inf *inf, const char *rv)
{
	if (rv == NULL)
		return;
	size_t n = strlen(rv);
	if (n >= sizeof(inf->st.resource_version))
		n = sizeof(inf->st.resource_version) - 1;
	memcpy(inf->st.resource_version, rv, n);
	inf->st.resource_version[n] = '\0';
}

/* ---- dispatch (loop thread) ----------------------------------------- */

enum { EV_ADD, EV_UPDATE, EV_DELETE };

static void
dispatch(mcf_inf *inf, int kind, const json_t *old_obj, const json_t *obj,
    bool initial)
{
	mtx_lock(&inf->hmtx);
	tls_dispatch = inf;
	/* Index, not pointer: a handler may add handlers (realloc). */
	for (size_t i = 0; i < inf->nhdl; i++) {
		if (inf->hdl[i].pending)
			continue;
		mcf_inf_handler h = inf->hdl[i].h;
		switch (kind) {
		case EV_ADD:
			if (h.on_add != NULL)
				h.on_add(h.arg, obj, initial);
			break;
		case EV_UPDATE:
			if (h.on_update != NULL)
				h.on_update(h.arg, old_obj, obj);
			break;
		default:
			if (h.on_delete != NULL)
				h.on_delete(h.arg, obj);
			break;
		}
	}
	tls_dispatch = NULL;
	mtx_unlock(&inf->hmtx);
}

/* Gives handlers added since the last call their initial adds. */
static void
deliver_initial(mcf_inf *inf)
{
	if (!atomic_exchange(&inf->hpending, false))
		return;
	mtx_lock(&inf->hmtx);
	tls_dispatch = inf;
	for (size_t i = 0; i < inf->nhdl; i++) {
		if (!inf->hdl[i].pending)
			continue;
		mcf_inf_handler h = inf->hdl[i].h;
		/* The loop thread is the only writer of objs: no lock. */
		for (size_t j = 0; h.on_add != NULL && j < inf->objs.cap;
		     j++) {
			if (inf->objs.s[j].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[j].val;
			h.on_add(h.arg, e->obj, true);
		}
		inf->hdl[i].pending = false;
	}
	tls_dispatch = NULL;
	mtx_unlock(&inf->hmtx);
}

/* ---- cache updates (loop thread) ------------------------------------ */

/* Builds the cache key of `obj` into `buf` (INF_KEY_MAX); its length, or
 * 0 when the object has no usable name. */
static size_t
obj_key(const json_t *obj, char *buf)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char   *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (name == NULL || name[0] == '\0')
		return 0;
	int n = (ns != NULL && ns[0] != '\0')
	    ? snprintf(buf, INF_KEY_MAX, "%s/%s", ns, name)
	    : snprintf(buf, INF_KEY_MAX, "%s", name);
	if (n <= 0 || n >= INF_KEY_MAX)
		return 0;
	return (size_t) n;
}

static const char *
obj_rv(const json_t *obj)
{
	return json_string_value(json_object_get(
	    json_object_get(obj, "metadata"), "resourceVersion"));
}

/* controller-runtime's default transform: managedFields are large and no
 * controller reads them from the cache. */
static void
strip(json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	if (json_is_object(meta))
		json_object_del(meta, "managedFields");
}

static inf_ent *
ent_new(const char *key, size_t kl, uint64_t h, json_t *obj)
{
	inf_ent *e = mcf_malloc(sizeof(*e) + kl + 1);
	e->obj     = obj;
	e->hash    = h;
	e->klen    = kl;
	memcpy(e->key, key, kl);
	e->key[kl] = '\0';
	return e;
}

static void
ent_free(inf_ent *e)
{
	obj_release(e->obj);
	free(e);
}

/* Inserts `e` (steals it), write lock taken here.  `ev_rv`: a watch
 * event's resourceVersion to count the event and record it, or NULL. */
static void
cache_insert(mcf_inf *inf, inf_ent *e, bool event, const char *ev_rv)
{
	wr_lock(&inf->rw);
	smap_put(&inf->objs, e->key, e->klen, e->hash, e);
	for (size_t i = 0; i < inf->nidx; i++)
		idx_update(inf->idx[i], e, NULL, e->obj);
	if (event) {
		inf->st.events++;
		stats_rv_locked(inf, ev_rv);
	}
	rw_unlock(&inf->rw);
}

/* Replaces the object of `e` by `obj` (steals the reference); returns
 * the old object (a reference the caller drops). */
static json_t *
cache_replace(
    mcf_inf *inf, inf_ent *e, json_t *obj, bool event, const char *ev_rv)
{
	wr_lock(&inf->rw);
	json_t *old = e->obj;
	for (size_t i = 0; i < inf->nidx; i++)
		idx_update(inf->idx[i], e, old, obj);
	e->obj = obj;
	if (event) {
		inf->st.events++;
		stats_rv_locked(inf, ev_rv);
	}
	rw_unlock(&inf->rw);
	return old;
}

/* Unlinks `e` from the table and indexes; the caller frees it. */
static void
cache_remove(mcf_inf *inf, inf_ent *e, bool event, const char *ev_rv)
{
	wr_lock(&inf->rw);
	for (size_t i = 0; i < inf->nidx; i++)
		idx_update(inf->idx[i], e, e->obj, NULL);
	smap_del(&inf->objs, e->key, e->klen, e->hash);
	if (event) {
		inf->st.events++;
		stats_rv_locked(inf, ev_rv);
	}
	rw_unlock(&inf->rw);
}

/* Applies one watch event; steals `obj`, which nobody else holds yet, so
 * it may still be changed (stripped) before it is published. */
static void
apply_event(mcf_inf *inf, mcf_ws_type type, json_t *obj, const char *rv)
{
	char   key[INF_KEY_MAX];
	size_t kl = obj_key(obj, key);
	if (kl == 0) {
		mcf_log_warn("INF-EVENT",
		    "%s: %s event without a usable metadata.name ignored",
		    inf->desc, mcf_ws_type_name(type));
		json_decref(obj);
		return;
	}
	uint64_t h = hash_bytes(key, kl);
	inf_ent *e = smap_get(&inf->objs, key, kl, h);
	strip(obj);
	if (type == MCF_WS_DELETED) {
		if (e != NULL) {
			cache_remove(inf, e, true, rv);
			dispatch(inf, EV_DELETE, NULL, obj, false);
			ent_free(e);
		}
		obj_release(obj); /* handlers may have kept it */
		return;
	}
	if (e != NULL) {
		json_t *old = cache_replace(inf, e, obj, true, rv);
		dispatch(inf, EV_UPDATE, old, obj, false);
		obj_release(old);
	} else {
		e = ent_new(key, kl, h, obj);
		cache_insert(inf, e, true, rv);
		dispatch(inf, EV_ADD, NULL, obj, false);
	}
}

static void
staging_clear(mcf_inf *inf)
{
	for (size_t i = 0; i < inf->staging.cap; i++)
		if (inf->staging.s[i].key != NULL)
			ent_free(inf->staging.s[i].val);
	smap_fini(&inf->staging);
}

/* Merges the complete list in `staging` into the cache and tells the
 * handlers the difference: adds, updates (resourceVersion changed),
 * deletes (cached, not listed).  The first list's adds are initial. */
static void
merge_list(mcf_inf *inf)
{
	bool first = !inf->started;
	smap st    = inf->staging;
	memset(&inf->staging, 0, sizeof(inf->staging));
	if (!first) {
		/* Gone from the server, first, while every staged entry (the
		 * keys of `st`) is alive; collected before removal, which
		 * moves slots. */
		inf_ent **gone = NULL;
		size_t    ng = 0, gcap = 0;
		for (size_t i = 0; i < inf->objs.cap; i++) {
			if (inf->objs.s[i].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[i].val;
			if (smap_get(&st, e->key, e->klen, e->hash) != NULL)
				continue;
			if (ng == gcap) {
				gcap = gcap ? gcap * 2 : 16;
				gone = mcf_realloc(gone, gcap * sizeof(*gone));
			}
			gone[ng++] = e;
		}
		for (size_t i = 0; i < ng; i++) {
			cache_remove(inf, gone[i], false, NULL);
			dispatch(inf, EV_DELETE, NULL, gone[i]->obj, false);
			ent_free(gone[i]);
		}
		free(gone);
	}
	for (size_t i = 0; i < st.cap; i++) {
		if (st.s[i].key == NULL)
			continue;
		inf_ent *n = st.s[i].val;
		inf_ent *e = smap_get(&inf->objs, n->key, n->klen, n->hash);
		if (e == NULL) {
			cache_insert(inf, n, false, NULL);
			dispatch(inf, EV_ADD, NULL, n->obj, first);
			continue;
		}
		const char *a = obj_rv(e->obj), *b = obj_rv(n->obj);
		if (a == NULL || b == NULL || strcmp(a, b) != 0) {
			json_t *obj = obj_ref(n->obj);
			json_t *old = cache_replace(inf, e, obj, false, NULL);
			dispatch(inf, EV_UPDATE, old, obj, false);
			obj_release(old);
		}
		/* `st` is not read after this: its slots may now point at
		 * freed keys. */
		ent_free(n);
	}
	smap_fini(&st);
}

/* ---- requests (loop thread) ----------------------------------------- */

static void start_list(mcf_inf *inf, bool gone);
static void start_watch(mcf_inf *inf);

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	mcf_inf          *inf    = arg;
	size_t            n      = size * nmemb;
	static const char name[] = "retry-after:";
	if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response: "HTTP/1.1 200 OK". */
		inf->retry_after = 0;
		const char *sp   = memchr(data, ' ', n);
		if (inf->req == REQ_WATCH && sp != NULL
		    && (size_t) (sp - data) + 4 <= n
		    && strncmp(sp + 1, "200", 3) == 0)
			stats_ok(inf, 200); /* the watch is established */
		return n;
	}
	if (n > sizeof(name) - 1
	    && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		char   v[32];
		size_t vl = n - (sizeof(name) - 1);
		if (vl >= sizeof(v))
			vl = sizeof(v) - 1;
		memcpy(v, data + sizeof(name) - 1, vl);
		v[vl]   = '\0';
		char *e = NULL;
		long  s = strtol(v, &e, 10);
		if (e != v && s > 0 && s < 3600)
			inf->retry_after = (int) s;
	}
	return n;
}

/* Applies the events queued by on_ws_event, in order. */
static void
apply_pending(mcf_inf *inf)
{
	for (size_t i = 0; i < inf->npend; i++) {
		inf_pend *p = &inf->pend[i];
		if (inf->stream_events++ == 0)
			inf->fails = 0; /* the watch works: reset backoff */
		set_rv(inf, obj_rv(p->obj));
		if (p->type == MCF_WS_BOOKMARK) {
			json_decref(p->obj); /* never shared */
			wr_lock(&inf->rw);
			inf->st.bookmarks++;
			stats_rv_locked(inf, inf->rv);
			rw_unlock(&inf->rw);
		} else {
			apply_event(inf, p->type, p->obj, inf->rv);
		}
		p->obj = NULL;
	}
	inf->npend = 0;
}

/* One watch event, on the loop thread inside the parser, inside
 * libcurl's write callback.  Objects are only queued here and applied
 * once the parser has dropped its own reference to the event line: a
 * published object must never meet jansson's plain json_decref on
 * another thread (see obj_release).  Returns non-zero to end the stream
 * (a relist or an error). */
static int
on_ws_event(const mcf_ws_event *ev, void *arg)
{
	mcf_inf *inf = arg;
	switch (ev->type) {
	case MCF_WS_ADDED:
	case MCF_WS_MODIFIED:
	case MCF_WS_DELETED:
	case MCF_WS_BOOKMARK:
		if (inf->npend == inf->pend_cap) {
			inf->pend_cap = inf->pend_cap ? inf->pend_cap * 2 : 64;
			inf->pend     = mcf_realloc(
			        inf->pend, inf->pend_cap * sizeof(*inf->pend));
		}
		inf->pend[inf->npend].type  = ev->type;
		inf->pend[inf->npend++].obj = json_incref(ev->object);
		return 0;
	default:
		break;
	}
	/* ERROR: a Status. */
	int err = mcf_kc_classify(ev->reason, ev->code ? ev->code : 500);
	snprintf(inf->watch_err, sizeof(inf->watch_err),
	    "watch ERROR event: %d %s: %s", ev->code,
	    ev->reason ? ev->reason : "", ev->message ? ev->message : "");
	if (err == MCF_EGONE) {
		inf->want_relist = true;
		inf->relist_gone = true;
	} else if (ev->code == 504 || err == MCF_ENOENT) {
		/* Too large resource version (a restarted server), or the
		 * resource went away: list again from scratch. */
		inf->want_relist = true;
	} else {
		inf->watch_failed = true;
	}
	return 1;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	mcf_inf *inf = arg;
	size_t   n   = size * nmemb;
	if (inf->http_code == 0)
		curl_easy_getinfo(
		    inf->easy, CURLINFO_RESPONSE_CODE, &inf->http_code);
	if (inf->req == REQ_WATCH && inf->http_code == 200) {
		int rc = mcf_ws_feed(
		    inf->ws, data, n, on_ws_event, inf, &inf->ws_ei);
		/* The events before an error are good: apply them. */
		apply_pending(inf);
		if (rc != MCF_OK) {
			inf->ws_rc = rc;
			return 0; /* ends the transfer */
		}
		return n;
	}
	size_t limit = inf->req == REQ_LIST ? INF_MAX_LIST_BODY : 65536;
	if (inf->body.n + n > limit) {
		inf->body_too_big = true;
		return 0;
	}
	buf_add(&inf->body, data, n);
	return n;
}

/* Starts a GET of `url` (steals it) as request `req`. */
static void
send_request(mcf_inf *inf, int req, char *url, int64_t timeout_ms)
{
	mcf_inf_loop *L = inf->loop;
	if (inf->easy == NULL) {
		inf->easy = curl_easy_init();
		if (inf->easy == NULL)
			mcf_panic("curl_easy_init failed");
	} else {
		curl_easy_reset(inf->easy);
	}
	curl_slist_free_all(inf->hdrs);
	inf->hdrs     = NULL;
	CURL       *h = inf->easy;
	mcf_errinfo ei;
	if (mcf_kc_easy_setup(inf->kc, h, &inf->hdrs, &ei) != MCF_OK)
		mcf_panic("informer: the TLS options accepted at acquire "
		          "were refused");
	inf->req           = req;
	inf->http_code     = 0;
	inf->retry_after   = 0;
	inf->body.n        = 0;
	inf->body_too_big  = false;
	inf->errbuf[0]     = '\0';
	inf->req_start     = now_ms();
	inf->ws_rc         = MCF_OK;
	inf->stream_events = 0;
	inf->want_relist   = false;
	inf->relist_gone   = false;
	inf->watch_failed  = false;
	int bad            = 0;
	bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, inf->hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PRIVATE, inf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, inf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)
	    != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, inf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, inf->errbuf)
	    != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) timeout_ms)
	    != CURLE_OK;
	bad |= curl_easy_setopt(
	           h, CURLOPT_CONNECTTIMEOUT_MS, (long) INF_CONNECT_TIMEOUT_MS)
	    != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long) INF_RECV_BUFFER)
	    != CURLE_OK;
	if (bad)
		mcf_panic("informer: libcurl refused a request option");
	free(url);
	if (req == REQ_WATCH)
		mcf_ws_reset(inf->ws);
	if (curl_multi_add_handle(L->multi, h) != CURLM_OK)
		mcf_panic("curl_multi_add_handle");
}

static char *
list_url(mcf_inf *inf)
{
	inf_buf b = { 0 };
	buf_adds(&b, inf->base_url);
	char lim[32];
	snprintf(lim, sizeof(lim), "%lld", (long long) inf->page_size);
	buf_add_query(&b, "limit", lim);
	buf_add_query(&b, "continue", inf->cont);
	buf_add_query(&b, "labelSelector", inf->lsel);
	buf_add_query(&b, "fieldSelector", inf->fsel);
	return b.p;
}

static void
send_page(mcf_inf *inf)
{
	inf->state = ST_LIST;
	send_request(inf, REQ_LIST, list_url(inf), inf->list_timeout_ms);
}

/* Starts a list from its first page.  `gone`: caused by a 410. */
static void
start_list(mcf_inf *inf, bool gone)
{
	staging_clear(inf);
	free(inf->cont);
	inf->cont      = NULL;
	inf->list_gone = gone;
	wr_lock(&inf->rw);
	inf->st.lists++;
	if (gone)
		inf->st.relists_gone++;
	rw_unlock(&inf->rw);
	send_page(inf);
}

static void
start_watch(mcf_inf *inf)
{
	int t = inf->watch_timeout_s;
	if (t <= 0)
		t = 300 + (int) (rand_r(&inf->seed) % 300);
	char ts[16];
	snprintf(ts, sizeof(ts), "%d", t);
	inf_buf b = { 0 };
	buf_adds(&b, inf->base_url);
	buf_adds(&b, "?watch=1&allowWatchBookmarks=true");
	buf_add_query(&b, "resourceVersion", inf->rv);
	buf_add_query(&b, "timeoutSeconds", ts);
	buf_add_query(&b, "labelSelector", inf->lsel);
	buf_add_query(&b, "fieldSelector", inf->fsel);
	wr_lock(&inf->rw);
	inf->st.watches++;
	rw_unlock(&inf->rw);
	inf->state = ST_WATCH;
	send_request(
	    inf, REQ_WATCH, b.p, (int64_t) t * 1000 + INF_WATCH_GRACE_MS);
}

/* Schedules `what` (enum inf_retry) after a jittered backoff: client-go's
 * reflector, 800 ms doubling to a 30 s cap, then jitter factor 1.0 (a delay in
 * [d, 2d)); a Retry-After is a minimum. */
static void
retry_later(mcf_inf *inf, int what)
{
	inf->fails++;
	int64_t d = inf->backoff_ms;
	for (unsigned i = 1; i < inf->fails && d < inf->backoff_max_ms; i++)
		d *= 2;
	if (d > inf->backoff_max_ms)
		d = inf->backoff_max_ms;
	int64_t wait = d
	    + (int64_t) ((double) d * rand_r(&inf->seed)
	        / ((double) RAND_MAX + 1.0));
	if (inf->retry_after > 0 && wait < inf->retry_after * 1000LL)
		wait = inf->retry_after * 1000LL;
	inf->state      = ST_WAIT;
	inf->retry_what = what;
	mcf_log_debug("INF-RETRY", "%s: %s again in %lld ms", inf->desc,
	    what == RT_WATCH ? "watch" : "list", (long long) wait);
	timer_arm(inf->loop, &inf->t_retry, now_ms() + wait);
}

/* Lists again from scratch: at once after a success, else (a 410 storm,
 * a server that lost its history) after the backoff, which only watch
 * progress resets. */
static void
relist(mcf_inf *inf, bool gone)
{
	if (inf->fails == 0) {
		inf->fails = 1;
		start_list(inf, gone);
	} else {
		retry_later(inf, gone ? RT_RELIST_GONE : RT_RELIST);
	}
}

/* An error answer's Status: fills reason/message; returns the mcf_err. */
static int
answer_error(mcf_inf *inf, char *msg, size_t msglen)
{
	const char *reason = "";
	json_t     *j      = NULL;
	snprintf(msg, msglen, "HTTP %ld", inf->http_code);
	if (inf->body.n > 0)
		j = json_loadb(inf->body.p, inf->body.n, 0, NULL);
	if (json_is_object(j)) {
		const char *r
		    = json_string_value(json_object_get(j, "reason"));
		const char *m
		    = json_string_value(json_object_get(j, "message"));
		if (r != NULL)
			reason = r;
		if (m != NULL)
			snprintf(msg, msglen, "HTTP %ld %s: %s",
			    inf->http_code, reason, m);
	}
	int err = mcf_kc_classify(reason, (int) inf->http_code);
	json_decref(j);
	return err;
}

/* Takes the items of a list page into `staging`; false on a malformed
 * body (message in `msg`). */
static bool
take_page(mcf_inf *inf, char *msg, size_t msglen)
{
	json_error_t je;
	json_t      *j = json_loadb(inf->body.p, inf->body.n, 0, &je);
	if (!json_is_object(j)) {
		snprintf(msg, msglen, "list body is not a JSON object: %s",
		    j == NULL ? je.text : "");
		json_decref(j);
		return false;
	}
	json_t     *items = json_object_get(j, "items");
	json_t     *meta  = json_object_get(j, "metadata");
	const char *rv
	    = json_string_value(json_object_get(meta, "resourceVersion"));
	const char *cont
	    = json_string_value(json_object_get(meta, "continue"));
	if ((items != NULL && !json_is_array(items) && !json_is_null(items))
	    || rv == NULL) {
		snprintf(msg, msglen,
		    "list body lacks items or metadata.resourceVersion");
		json_decref(j);
		return false;
	}
	/* Items of built-in lists omit kind and apiVersion: fill them in
	 * from the list so cached objects look like watched ones. */
	const char *lkind = json_string_value(json_object_get(j, "kind"));
	const char *lapi = json_string_value(json_object_get(j, "apiVersion"));
	char        kind[256] = "";
	size_t      kl        = lkind ? strlen(lkind) : 0;
	if (kl > 4 && kl < sizeof(kind) && strcmp(lkind + kl - 4, "List") == 0)
		snprintf(kind, sizeof(kind), "%.*s", (int) (kl - 4), lkind);
	size_t  i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		char   key[INF_KEY_MAX];
		size_t n = json_is_object(it) ? obj_key(it, key) : 0;
		if (n == 0) {
			mcf_log_warn("INF-LIST-ITEM",
			    "%s: list item without a usable metadata.name "
			    "ignored",
			    inf->desc);
			continue;
		}
		strip(it);
		if (kind[0] != '\0' && json_object_get(it, "kind") == NULL)
			json_object_set_new(it, "kind", json_string(kind));
		if (lapi != NULL && json_object_get(it, "apiVersion") == NULL)
			json_object_set_new(
			    it, "apiVersion", json_string(lapi));
		uint64_t h   = hash_bytes(key, n);
		inf_ent *e   = ent_new(key, n, h, json_incref(it));
		inf_ent *old = smap_put(&inf->staging, e->key, n, h, e);
		if (old != NULL)
			ent_free(old);
	}
	free(inf->list_rv);
	inf->list_rv = mcf_strdup(rv);
	free(inf->cont);
	inf->cont
	    = (cont != NULL && cont[0] != '\0') ? mcf_strdup(cont) : NULL;
	json_decref(j);
	return true;
}

static void
set_synced(mcf_inf *inf)
{
	mtx_lock(&inf->sync_mtx);
	atomic_store(&inf->synced, true);
	pthread_cond_broadcast(&inf->sync_cv);
	mtx_unlock(&inf->sync_mtx);
}

static void
list_done(mcf_inf *inf, CURLcode cc)
{
	char msg[256];
	if (cc != CURLE_OK) {
		const char *m   = inf->body_too_big ? "list body over 1 GiB"
		      : inf->errbuf[0]              ? inf->errbuf
		                                    : curl_easy_strerror(cc);
		int         err = inf->body_too_big          ? MCF_ETOOBIG
		            : cc == CURLE_OPERATION_TIMEDOUT ? MCF_ETIMEDOUT
		                                             : MCF_EIO;
		stats_fail(inf, err, 0, false, "list %s: %s", inf->desc, m);
		mcf_log_warn("INF-LIST", "%s: list failed: %s", inf->desc, m);
		retry_later(inf, RT_LIST);
		return;
	}
	if (inf->http_code != 200) {
		int err = answer_error(inf, msg, sizeof(msg));
		if (err == MCF_EGONE && inf->cont != NULL) {
			/* The continue token expired: start over. */
			stats_fail(inf, err, (int) inf->http_code, false,
			    "list %s: %s", inf->desc, msg);
			mcf_log_info("INF-LIST-GONE",
			    "%s: continue token expired; listing again",
			    inf->desc);
			start_list(inf, true);
			return;
		}
		stats_fail(inf, err, (int) inf->http_code, false,
		    "list %s: %s", inf->desc, msg);
		if (err == MCF_ENOENT)
			mcf_log_info("INF-LIST-404",
			    "%s: resource not served (yet): %s", inf->desc,
			    msg);
		else
			mcf_log_warn(
			    "INF-LIST", "%s: list failed: %s", inf->desc, msg);
		retry_later(inf, RT_LIST);
		return;
	}
	if (!take_page(inf, msg, sizeof(msg))) {
		stats_fail(inf, MCF_EPROTO, 200, false, "list %s: %s",
		    inf->desc, msg);
		mcf_log_warn("INF-LIST", "%s: %s", inf->desc, msg);
		/* Start over: the page boundary is lost. */
		free(inf->cont);
		inf->cont = NULL;
		staging_clear(inf);
		retry_later(inf, RT_LIST);
		return;
	}
	wr_lock(&inf->rw);
	inf->st.list_pages++;
	inf->st.last_err       = 0;
	inf->st.last_http_code = 200;
	rw_unlock(&inf->rw);
	if (inf->cont != NULL) {
		send_page(inf);
		return;
	}
	merge_list(inf);
	set_rv(inf, inf->list_rv);
	wr_lock(&inf->rw);
	snprintf(inf->st.resource_version, sizeof(inf->st.resource_version),
	    "%s", inf->rv ? inf->rv : "");
	rw_unlock(&inf->rw);
	if (!inf->started) {
		inf->started = true;
		set_synced(inf);
		if (inf->resync_ms > 0)
			timer_arm(inf->loop, &inf->t_resync,
			    now_ms() + inf->resync_ms);
	}
	mcf_log_debug("INF-LISTED", "%s: listed at %s, %zu objects", inf->desc,
	    inf->rv ? inf->rv : "", inf->objs.n);
	start_watch(inf);
}

static void
watch_done(mcf_inf *inf, CURLcode cc)
{
	char    msg[256];
	int64_t took = now_ms() - inf->req_start;
	/* The last resourceVersion for stats, once per stream. */
	wr_lock(&inf->rw);
	snprintf(inf->st.resource_version, sizeof(inf->st.resource_version),
	    "%s", inf->rv ? inf->rv : "");
	rw_unlock(&inf->rw);
	if (inf->want_relist) {
		stats_fail(inf, inf->relist_gone ? MCF_EGONE : MCF_EUNAVAIL, 0,
		    false, "%s: %s", inf->desc, inf->watch_err);
		mcf_log_info("INF-RELIST", "%s: %s; listing again", inf->desc,
		    inf->watch_err);
		relist(inf, inf->relist_gone);
		return;
	}
	if (inf->http_code != 200 && inf->http_code != 0) {
		int err = answer_error(inf, msg, sizeof(msg));
		if (err == MCF_EGONE) {
			mcf_log_info("INF-RELIST",
			    "%s: watch: %s; listing again", inf->desc, msg);
			stats_fail(inf, err, (int) inf->http_code, false,
			    "watch %s: %s", inf->desc, msg);
			relist(inf, true);
			return;
		}
		stats_fail(inf, err, (int) inf->http_code, false,
		    "watch %s: %s", inf->desc, msg);
		mcf_log_warn(
		    "INF-WATCH", "%s: watch failed: %s", inf->desc, msg);
		if (err == MCF_ENOENT || inf->http_code == 504) {
			relist(inf, false);
		} else {
			retry_later(inf, RT_WATCH);
		}
		return;
	}
	if (inf->http_code == 0) {
		const char *m
		    = inf->errbuf[0] ? inf->errbuf : curl_easy_strerror(cc);
		stats_fail(
		    inf, MCF_EIO, 0, false, "watch %s: %s", inf->desc, m);
		mcf_log_warn(
		    "INF-WATCH", "%s: watch failed: %s", inf->desc, m);
		retry_later(inf, RT_WATCH);
		return;
	}
	/* A 200 stream that ended. */
	if (inf->watch_failed) {
		stats_fail(inf, MCF_EINTERNAL, 200, false, "watch %s: %s",
		    inf->desc, inf->watch_err);
		mcf_log_warn("INF-WATCH", "%s: %s", inf->desc, inf->watch_err);
		retry_later(inf, RT_WATCH);
		return;
	}
	if (inf->ws_rc != MCF_OK) {
		stats_fail(inf, inf->ws_rc, 200, true, "watch %s: %s",
		    inf->desc, inf->ws_ei.msg);
		mcf_log_error("INF-STREAM",
		    "%s: watch stream error at resourceVersion %s: %s; "
		    "resuming",
		    inf->desc, inf->rv ? inf->rv : "", inf->ws_ei.msg);
		retry_later(inf, RT_WATCH);
		return;
	}
	mcf_errinfo ei;
	int         frc = mcf_ws_finish(inf->ws, &ei);
	if (cc != CURLE_OK || frc != MCF_OK) {
		const char *m = frc != MCF_OK ? ei.msg
		    : inf->errbuf[0]          ? inf->errbuf
		                              : curl_easy_strerror(cc);
		stats_fail(inf, frc != MCF_OK ? frc : MCF_EIO, 200, true,
		    "watch %s: stream cut: %s", inf->desc, m);
		mcf_log_error("INF-STREAM",
		    "%s: watch stream cut at resourceVersion %s: %s; "
		    "resuming",
		    inf->desc, inf->rv ? inf->rv : "", m);
		retry_later(inf, RT_WATCH);
		return;
	}
	stats_ok(inf, 200);
	if (inf->stream_events == 0 && took < INF_SHORT_WATCH_MS) {
		mcf_log_debug("INF-WATCH-SHORT",
		    "%s: watch ended after %lld ms without events", inf->desc,
		    (long long) took);
		retry_later(inf, RT_WATCH);
		return;
	}
	inf->fails = 0;
	start_watch(inf); /* renewed from the last resourceVersion */
}

/* A transfer of `inf` finished (its handle is out of the multi). */
static void
request_done(mcf_inf *inf, CURLcode cc)
{
	int req  = inf->req;
	inf->req = REQ_NONE;
	if (inf->http_code == 0)
		curl_easy_getinfo(
		    inf->easy, CURLINFO_RESPONSE_CODE, &inf->http_code);
	curl_slist_free_all(inf->hdrs);
	inf->hdrs = NULL;
	if (req == REQ_LIST)
		list_done(inf, cc);
	else if (req == REQ_WATCH)
		watch_done(inf, cc);
	/* Keep small buffers only. */
	if (inf->body.cap > (1u << 20)) {
		free(inf->body.p);
		memset(&inf->body, 0, sizeof(inf->body));
	}
}

static void
on_timer(mcf_inf *inf, inf_timer *t)
{
	if (t->kind == TM_RESYNC) {
		/* Resync: every cached object to on_update(old == new). */
		for (size_t i = 0; i < inf->objs.cap; i++) {
			if (inf->objs.s[i].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[i].val;
			dispatch(inf, EV_UPDATE, e->obj, e->obj, false);
		}
		timer_arm(inf->loop, t, now_ms() + inf->resync_ms);
		return;
	}
	if (inf->state != ST_WAIT)
		return;
	switch (inf->retry_what) {
	case RT_WATCH:
		start_watch(inf);
		break;
	case RT_RELIST_GONE:
		start_list(inf, true);
		break;
	case RT_RELIST:
		start_list(inf, false);
		break;
	default: /* RT_LIST: the pending page, or a first page */
		if (inf->cont == NULL && inf->staging.n == 0)
			start_list(inf, inf->list_gone);
		else
			send_page(inf);
		break;
	}
}

/* ---- commands (loop thread) ----------------------------------------- */

static void
inf_start(mcf_inf *inf)
{
	if (mcf_ws_create(&inf->ws, inf->max_event) != MCF_OK)
		mcf_panic("mcf_ws_create");
	start_list(inf, false);
}

static void
inf_stop(mcf_inf *inf)
{
	mcf_inf_loop *L = inf->loop;
	if (inf->req != REQ_NONE) {
		curl_multi_remove_handle(L->multi, inf->easy);
		inf->req = REQ_NONE;
	}
	timer_cancel(L, &inf->t_retry);
	timer_cancel(L, &inf->t_resync);
	curl_easy_cleanup(inf->easy);
	inf->easy = NULL;
	curl_slist_free_all(inf->hdrs);
	inf->hdrs = NULL;
	mcf_ws_destroy(inf->ws);
	inf->ws = NULL;
	for (size_t i = 0; i < inf->npend; i++)
		obj_release(inf->pend[i].obj);
	inf->npend = 0;
	staging_clear(inf);
	inf->state = ST_STOPPED;
}

static void
run_commands(mcf_inf_loop *L)
{
	mtx_lock(&L->mtx);
	mcf_inf *q = L->q_head;
	L->q_head = L->q_tail = NULL;
	mtx_unlock(&L->mtx);
	/* An informer stays `queued` until it is taken here, so a command
	 * posted meanwhile only adds to its bits and does not relink it. */
	while (q != NULL) {
		mcf_inf *inf = q;
		mtx_lock(&L->mtx);
		q             = inf->q_next;
		inf->q_next   = NULL;
		inf->queued   = false;
		unsigned cmds = inf->cmds;
		inf->cmds     = 0;
		mtx_unlock(&L->mtx);
		if (cmds & CMD_STOP) {
			if (inf->state != ST_STOPPED)
				inf_stop(inf);
			mtx_lock(&L->mtx);
			inf->stopped = true;
			pthread_cond_broadcast(&inf->stop_cv);
			mtx_unlock(&L->mtx);
			continue; /* `inf` may be freed from here on */
		}
		if ((cmds & CMD_START) && inf->state == ST_IDLE)
			inf_start(inf);
		if (cmds & CMD_HANDLERS)
			deliver_initial(inf);
	}
}

/* Queues `cmd` for `inf` and wakes the loop. */
static void
post(mcf_inf *inf, unsigned cmd)
{
	mcf_inf_loop *L = inf->loop;
	mtx_lock(&L->mtx);
	inf->cmds |= cmd;
	if (!inf->queued) {
		inf->queued = true;
		inf->q_next = NULL;
		if (L->q_tail != NULL)
			L->q_tail->q_next = inf;
		else
			L->q_head = inf;
		L->q_tail = inf;
	}
	mtx_unlock(&L->mtx);
	uint64_t one = 1;
	while (write(L->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* ---- the loop thread ------------------------------------------------ */

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void) e;
	(void) socketp;
	mcf_inf_loop *L = userp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(L->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	struct epoll_event ev = { 0 };
	ev.data.fd            = s;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(L->epfd, EPOLL_CTL_MOD, s, &ev) != 0) {
		if (errno != ENOENT
		    || epoll_ctl(L->epfd, EPOLL_CTL_ADD, s, &ev) != 0)
			mcf_log_error("INF-EPOLL", "epoll_ctl fd %d: %s",
			    (int) s, strerror(errno));
	}
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void) m;
	mcf_inf_loop *L = userp;
	L->curl_at      = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	return 0;
}

static void
drain_done(mcf_inf_loop *L)
{
	CURLMsg *m;
	int      left;
	while ((m = curl_multi_info_read(L->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL    *h   = m->easy_handle;
		CURLcode cc  = m->data.result;
		mcf_inf *inf = NULL;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **) &inf);
		if (inf != NULL) {
			/* rest_client_requests_total, as for every REST
			 * call. */
			long code = 0;
			char host[256];
			if (cc == CURLE_OK)
				curl_easy_getinfo(
				    h, CURLINFO_RESPONSE_CODE, &code);
			mcf_kc_url_host(inf->base_url, host, sizeof(host));
			mcf_kc_metrics_record("GET", host, (int) code);
		}
		curl_multi_remove_handle(L->multi, h);
		if (inf != NULL)
			request_done(inf, cc);
	}
}

static void
run_timers(mcf_inf_loop *L)
{
	int64_t now = now_ms();
	while (L->nheap > 0 && L->heap[0]->at <= now) {
		inf_timer *t = L->heap[0];
		timer_cancel(L, t);
		on_timer(t->inf, t);
	}
}

static void *
loop_main(void *arg)
{
	mcf_inf_loop *L = arg;
	tls_loop        = L;
	pthread_setname_np(pthread_self(), "mcf-inf-loop"); /* for top, perf */
	struct epoll_event evs[64];
	for (;;) {
		mtx_lock(&L->mtx);
		bool stop = L->stop;
		mtx_unlock(&L->mtx);
		if (stop)
			break;
		int64_t now = now_ms(), to = -1;
		if (L->curl_at >= 0)
			to = L->curl_at > now ? L->curl_at - now : 0;
		if (L->nheap > 0) {
			int64_t t
			    = L->heap[0]->at > now ? L->heap[0]->at - now : 0;
			if (to < 0 || t < to)
				to = t;
		}
		if (to > INT_MAX)
			to = INT_MAX;
		int n = epoll_wait(L->epfd, evs, 64, (int) to);
		if (n < 0 && errno != EINTR)
			mcf_panic("epoll_wait");
		bool cmds = false;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == L->evfd) {
				uint64_t v;
				while (read(L->evfd, &v, sizeof(v)) < 0
				    && errno == EINTR)
					;
				cmds = true;
				continue;
			}
			int      flags = 0;
			uint32_t e     = evs[i].events;
			if (e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
				flags |= CURL_CSELECT_IN;
			if (e & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (e & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			int running;
			curl_multi_socket_action(
			    L->multi, fd, flags, &running);
		}
		if (L->curl_at >= 0 && now_ms() >= L->curl_at) {
			int running;
			L->curl_at = -1;
			curl_multi_socket_action(
			    L->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		drain_done(L);
		if (cmds)
			run_commands(L);
		run_timers(L);
	}
	return NULL;
}

/* ---- public: loop --------------------------------------------------- */

int
mcf_inf_loop_create(mcf_inf_loop **out, mcf_errinfo *ei)
{
	if (out == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "informer: no out");
	mcf_inf_loop *L = mcf_calloc(1, sizeof(*L));
	L->curl_at      = -1;
	L->epfd         = epoll_create1(EPOLL_CLOEXEC);
	L->evfd         = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (L->epfd < 0 || L->evfd < 0) {
		int e = errno;
		if (L->epfd >= 0)
			close(L->epfd);
		if (L->evfd >= 0)
			close(L->evfd);
		free(L);
		return mcf_errinfo_set(
		    ei, MCF_ESYS, "informer: epoll/eventfd: %s", strerror(e));
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = L->evfd };
	epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->evfd, &ev);
	L->multi = curl_multi_init();
	if (L->multi == NULL)
		mcf_panic("curl_multi_init failed");
	curl_multi_setopt(L->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(L->multi, CURLMOPT_SOCKETDATA, L);
	curl_multi_setopt(L->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(L->multi, CURLMOPT_TIMERDATA, L);
	pthread_mutex_init(&L->mtx, NULL);
	int rc = pthread_create(&L->thread, NULL, loop_main, L);
	if (rc != 0) {
		curl_multi_cleanup(L->multi);
		close(L->epfd);
		close(L->evfd);
		pthread_mutex_destroy(&L->mtx);
		free(L);
		return mcf_errinfo_set(ei, MCF_ESYS,
		    "informer: pthread_create: %s", strerror(rc));
	}
	*out = L;
	return MCF_OK;
}

void
mcf_inf_loop_destroy(mcf_inf_loop *L)
{
	if (L == NULL)
		return;
	if (tls_loop == L)
		mcf_panic("mcf_inf_loop_destroy on the loop thread");
	mtx_lock(&L->mtx);
	if (L->reg.n != 0)
		mcf_panic("mcf_inf_loop_destroy with informers not released");
	L->stop = true;
	mtx_unlock(&L->mtx);
	uint64_t one = 1;
	while (write(L->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(L->thread, NULL);
	curl_multi_cleanup(L->multi);
	close(L->epfd);
	close(L->evfd);
	smap_fini(&L->reg);
	free(L->heap);
	pthread_mutex_destroy(&L->mtx);
	free(L);
}

/* ---- public: informers ---------------------------------------------- */

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* The key: the key fields separated by '\0' (none may contain one). */
static char *
make_key(const mcf_inf_config *c, size_t *len)
{
	const char *f[] = { nz(c->cluster), nz(c->group), nz(c->version),
		nz(c->resource), nz(c->namespace), nz(c->label_selector),
		nz(c->field_selector) };
	size_t      n   = 0;
	for (size_t i = 0; i < 7; i++)
		n += strlen(f[i]) + 1;
	char  *k = mcf_malloc(n);
	size_t o = 0;
	for (size_t i = 0; i < 7; i++) {
		size_t l = strlen(f[i]) + 1;
		memcpy(k + o, f[i], l);
		o += l;
	}
	*len = n;
	return k;
}

static void
add_builtin_index(mcf_inf *inf, const char *name, mcf_inf_index_fn fn)
{
	inf_index *x = mcf_calloc(1, sizeof(*x));
	x->name      = mcf_strdup(name);
	x->fn        = fn;
	inf->idx = mcf_realloc(inf->idx, (inf->nidx + 1) * sizeof(*inf->idx));
	inf->idx[inf->nidx++] = x;
}

static void
inf_free(mcf_inf *inf)
{
	for (size_t i = 0; i < inf->objs.cap; i++)
		if (inf->objs.s[i].key != NULL)
			ent_free(inf->objs.s[i].val);
	smap_fini(&inf->objs);
	for (size_t i = 0; i < inf->nidx; i++)
		idx_free(inf->idx[i]);
	free(inf->idx);
	free(inf->hdl);
	mcf_kc_destroy(inf->kc);
	free(inf->key);
	free(inf->desc);
	free(inf->base_url);
	free(inf->lsel);
	free(inf->fsel);
	free(inf->body.p);
	free(inf->cont);
	free(inf->list_rv);
	free(inf->rv);
	free(inf->pend);
	pthread_rwlock_destroy(&inf->rw);
	pthread_mutex_destroy(&inf->sync_mtx);
	pthread_cond_destroy(&inf->sync_cv);
	pthread_mutex_destroy(&inf->hmtx);
	pthread_cond_destroy(&inf->stop_cv);
	free(inf);
}

int
mcf_inf_acquire(
    mcf_inf_loop *L, const mcf_inf_config *cfg, mcf_inf **out, mcf_errinfo *ei)
{
	if (L == NULL || cfg == NULL || out == NULL || cfg->kc == NULL
	    || cfg->kc->server == NULL || cfg->version == NULL
	    || cfg->version[0] == '\0' || cfg->resource == NULL
	    || cfg->resource[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "informer: missing kubeconfig, server, version or "
		    "resource");
	size_t   klen;
	char    *key = make_key(cfg, &klen);
	uint64_t kh  = hash_bytes(key, klen);

	mtx_lock(&L->mtx);
	mcf_inf *inf = smap_get(&L->reg, key, klen, kh);
	if (inf != NULL) {
		inf->refs++;
		mtx_unlock(&L->mtx);
		free(key);
		*out = inf;
		return MCF_OK;
	}
	mtx_unlock(&L->mtx);

	/* A new informer, built outside the lock. */
	mcf_kc     *kc = NULL;
	const char *ua = cfg->user_agent != NULL && cfg->user_agent[0] != '\0'
	    ? cfg->user_agent
	    : "mcfleet/" MCF_VERSION;
	int         rc = mcf_kc_create(cfg->kc, ua, NULL, &kc, ei);
	if (rc != MCF_OK) {
		free(key);
		return rc;
	}
	inf               = mcf_calloc(1, sizeof(*inf));
	inf->loop         = L;
	inf->key          = key;
	inf->klen         = klen;
	inf->khash        = kh;
	inf->kc           = kc;
	inf->refs         = 1;
	const char *group = nz(cfg->group);
	inf->desc = mcf_asprintf("%s/%s%s%s/%s%s%s", nz(cfg->cluster), group,
	    group[0] ? "/" : "", cfg->version, cfg->resource,
	    cfg->namespace && cfg->namespace[0] ? " in " : "",
	    nz(cfg->namespace));
	inf_buf u = { 0 };
	buf_adds(&u, cfg->kc->server);
	while (u.n > 0 && u.p[u.n - 1] == '/')
		u.p[--u.n] = '\0';
	if (group[0] == '\0') {
		buf_adds(&u, "/api/");
	} else {
		buf_adds(&u, "/apis/");
		buf_add_enc(&u, group);
		buf_adds(&u, "/");
	}
	buf_add_enc(&u, cfg->version);
	if (cfg->namespace != NULL && cfg->namespace[0] != '\0') {
		buf_adds(&u, "/namespaces/");
		buf_add_enc(&u, cfg->namespace);
	}
	buf_adds(&u, "/");
	buf_add_enc(&u, cfg->resource);
	inf->base_url = u.p;
	inf->lsel     = cfg->label_selector && cfg->label_selector[0]
	        ? mcf_strdup(cfg->label_selector)
	        : NULL;
	inf->fsel     = cfg->field_selector && cfg->field_selector[0]
	        ? mcf_strdup(cfg->field_selector)
	        : NULL;
	inf->page_size
	    = cfg->page_size > 0 ? cfg->page_size : INF_DEFAULT_PAGE;
	inf->resync_ms = cfg->resync_ms > 0 ? cfg->resync_ms : 0;
	inf->watch_timeout_s
	    = cfg->watch_timeout_s > 0 ? cfg->watch_timeout_s : 0;
	inf->max_event  = cfg->max_event_bytes > 0 ? cfg->max_event_bytes
	                                           : INF_DEFAULT_MAX_EVENT;
	inf->backoff_ms = cfg->backoff_initial_ms > 0 ? cfg->backoff_initial_ms
	                                              : INF_DEFAULT_BACKOFF_MS;
	inf->backoff_max_ms = cfg->backoff_max_ms > 0
	    ? cfg->backoff_max_ms
	    : INF_DEFAULT_BACKOFF_MAX_MS;
	if (inf->backoff_max_ms < inf->backoff_ms)
		inf->backoff_max_ms = inf->backoff_ms;
	inf->list_timeout_ms = cfg->list_timeout_ms > 0
	    ? cfg->list_timeout_ms
	    : INF_DEFAULT_LIST_TIMEOUT_MS;
	inf->seed    = (unsigned) (now_ms() ^ (uint64_t) (uintptr_t) inf ^ kh);
	inf->t_retry = (inf_timer) { 0, SIZE_MAX, inf, TM_RETRY };
	inf->t_resync = (inf_timer) { 0, SIZE_MAX, inf, TM_RESYNC };
	pthread_rwlock_init(&inf->rw, NULL);
	pthread_mutex_init(&inf->sync_mtx, NULL);
	pthread_cond_init(&inf->sync_cv, NULL);
	pthread_mutex_init(&inf->hmtx, NULL);
	pthread_cond_init(&inf->stop_cv, NULL);
	atomic_init(&inf->synced, false);
	atomic_init(&inf->hpending, false);
	add_builtin_index(inf, MCF_INF_INDEX_NAMESPACE, index_namespace);
	add_builtin_index(inf, MCF_INF_INDEX_OWNER_UID, index_owner_uid);

	mtx_lock(&L->mtx);
	mcf_inf *other = smap_get(&L->reg, key, klen, kh);
	if (other != NULL) {
		/* Another thread created it meanwhile. */
		other->refs++;
		mtx_unlock(&L->mtx);
		inf_free(inf);
		*out = other;
		return MCF_OK;
	}
	smap_put(&L->reg, inf->key, inf->klen, inf->khash, inf);
	mtx_unlock(&L->mtx);
	post(inf, CMD_START);
	*out = inf;
	return MCF_OK;
}

void
mcf_inf_release(mcf_inf *inf)
{
	if (inf == NULL)
		return;
	mcf_inf_loop *L = inf->loop;
	if (tls_loop == L)
		mcf_panic("mcf_inf_release on the loop thread (in a handler)");
	mtx_lock(&L->mtx);
	if (inf->refs <= 0)
		mcf_panic("mcf_inf_release: no reference left");
	if (--inf->refs > 0) {
		mtx_unlock(&L->mtx);
		return;
	}
	smap_del(&L->reg, inf->key, inf->klen, inf->khash);
	mtx_unlock(&L->mtx);
	post(inf, CMD_STOP);
	mtx_lock(&L->mtx);
	while (!inf->stopped)
		pthread_cond_wait(&inf->stop_cv, &L->mtx);
	mtx_unlock(&L->mtx);
	inf_free(inf);
}

int
mcf_inf_add_handler(mcf_inf *inf, const mcf_inf_handler *h, uint64_t *id)
{
	if (inf == NULL || h == NULL || id == NULL)
		return MCF_EINVAL;
	bool held = tls_dispatch == inf; /* called from one of its handlers */
	if (!held)
		mtx_lock(&inf->hmtx);
	if (inf->nhdl == inf->hcap) {
		inf->hcap = inf->hcap ? inf->hcap * 2 : 4;
		inf->hdl
		    = mcf_realloc(inf->hdl, inf->hcap * sizeof(*inf->hdl));
	}
	inf_hdl *e = &inf->hdl[inf->nhdl++];
	e->h       = *h;
	e->id      = ++inf->next_id;
	e->pending = true;
	*id        = e->id;
	atomic_store(&inf->hpending, true);
	if (!held)
		mtx_unlock(&inf->hmtx);
	post(inf, CMD_HANDLERS);
	return MCF_OK;
}

void
mcf_inf_remove_handler(mcf_inf *inf, uint64_t id)
{
	if (inf == NULL)
		return;
	if (tls_loop == inf->loop)
		mcf_panic("mcf_inf_remove_handler on the loop thread");
	mtx_lock(&inf->hmtx);
	for (size_t i = 0; i < inf->nhdl; i++) {
		if (inf->hdl[i].id != id)
			continue;
		memmove(&inf->hdl[i], &inf->hdl[i + 1],
		    (inf->nhdl - i - 1) * sizeof(*inf->hdl));
		inf->nhdl--;
		break;
	}
	mtx_unlock(&inf->hmtx);
}

int
mcf_inf_add_index(
    mcf_inf *inf, const char *name, mcf_inf_index_fn fn, void *arg)
{
	if (inf == NULL || name == NULL || fn == NULL)
		return MCF_EINVAL;
	wr_lock(&inf->rw);
	for (size_t i = 0; i < inf->nidx; i++) {
		if (strcmp(inf->idx[i]->name, name) == 0) {
			rw_unlock(&inf->rw);
			return MCF_EEXIST;
		}
	}
	inf_index *x = mcf_calloc(1, sizeof(*x));
	x->name      = mcf_strdup(name);
	x->fn        = fn;
	x->arg       = arg;
	for (size_t i = 0; i < inf->objs.cap; i++) {
		if (inf->objs.s[i].key == NULL)
			continue;
		inf_ent *e = inf->objs.s[i].val;
		idx_update(x, e, NULL, e->obj);
	}
	inf->idx = mcf_realloc(inf->idx, (inf->nidx + 1) * sizeof(*inf->idx));
	inf->idx[inf->nidx++] = x;
	rw_unlock(&inf->rw);
	return MCF_OK;
}

bool
mcf_inf_has_synced(mcf_inf *inf)
{
	return inf != NULL && atomic_load(&inf->synced);
}

int
mcf_inf_wait_synced(mcf_inf *inf, int64_t timeout_ms)
{
	if (inf == NULL)
		return MCF_EINVAL;
	if (atomic_load(&inf->synced))
		return MCF_OK;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	int rc = MCF_OK;
	mtx_lock(&inf->sync_mtx);
	while (!atomic_load(&inf->synced)) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&inf->sync_cv, &inf->sync_mtx);
		} else if (pthread_cond_timedwait(
		               &inf->sync_cv, &inf->sync_mtx, &dl)
		    == ETIMEDOUT) {
			rc = atomic_load(&inf->synced) ? MCF_OK
			                               : MCF_ETIMEDOUT;
			break;
		}
	}
	mtx_unlock(&inf->sync_mtx);
	return rc;
}

json_t *
mcf_inf_get(mcf_inf *inf, const char *key)
{
	if (inf == NULL || key == NULL)
		return NULL;
	size_t   kl = strlen(key);
	uint64_t h  = hash_bytes(key, kl);
	rd_lock(&inf->rw);
	inf_ent *e   = smap_get(&inf->objs, key, kl, h);
	json_t  *obj = e != NULL ? obj_ref(e->obj) : NULL;
	rw_unlock(&inf->rw);
	return obj;
}

int
mcf_inf_list(mcf_inf *inf, const char *index, const char *value, json_t ***out,
    size_t *n)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (inf == NULL || out == NULL || n == NULL
	    || (index != NULL && value == NULL))
		return MCF_EINVAL;
	rd_lock(&inf->rw);
	if (index == NULL) {
		size_t   k = 0;
		json_t **a = inf->objs.n ? mcf_malloc(inf->objs.n * sizeof(*a))
		                         : NULL;
		for (size_t i = 0; i < inf->objs.cap; i++) {
			if (inf->objs.s[i].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[i].val;
			a[k++]     = obj_ref(e->obj);
		}
		rw_unlock(&inf->rw);
		*out = a;
		*n   = k;
		return MCF_OK;
	}
	inf_index *x = NULL;
	for (size_t i = 0; i < inf->nidx; i++)
		if (strcmp(inf->idx[i]->name, index) == 0)
			x = inf->idx[i];
	if (x == NULL) {
		rw_unlock(&inf->rw);
		return MCF_ENOENT;
	}
	size_t      vl = strlen(value);
	inf_bucket *b
	    = smap_get(&x->buckets, value, vl, hash_bytes(value, vl));
	if (b == NULL || b->ents.n == 0) {
		rw_unlock(&inf->rw);
		return MCF_OK;
	}
	json_t **a = mcf_malloc(b->ents.n * sizeof(*a));
	size_t   k = 0;
	for (size_t i = 0; i < b->ents.cap; i++) {
		inf_ent *e = b->ents.s[i];
		if (e != NULL)
			a[k++] = obj_ref(e->obj);
	}
	rw_unlock(&inf->rw);
	*out = a;
	*n   = k;
	return MCF_OK;
}

void
mcf_inf_objs_free(json_t **objs, size_t n)
{
	for (size_t i = 0; objs != NULL && i < n; i++)
		obj_release(objs[i]);
	free(objs);
}

void
mcf_inf_obj_release(json_t *obj)
{
	obj_release(obj);
}

json_t *
mcf_inf_obj_ref(json_t *obj)
{
	return obj_ref(obj);
}

size_t
mcf_inf_count(mcf_inf *inf)
{
	if (inf == NULL)
		return 0;
	rd_lock(&inf->rw);
	size_t n = inf->objs.n;
	rw_unlock(&inf->rw);
	return n;
}

void
mcf_inf_get_stats(mcf_inf *inf, mcf_inf_stats *out)
{
	if (out == NULL)
		return;
	if (inf == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	rd_lock(&inf->rw);
	*out = inf->st;
	rw_unlock(&inf->rw);
}
