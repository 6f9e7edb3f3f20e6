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
 *          watchstream parser, and each event is applied as the parser
 *          delivers it
 *   WAIT   a retry timer is armed (backoff), then LIST or WATCH again
 * Each informer has at most one transfer, on one easy handle that is
 * reset and reconfigured (mcf_kc_easy_setup) for every request; the
 * multi handle pools connections, so a watch renewed after a clean end
 * reuses its connection.  Handlers run inside libcurl's write callback;
 * nothing there calls back into libcurl, and a watch is stopped from the
 * callback by returning a short write.
 *
 * The cache.  Entries sit in an open-addressing hash table keyed by
 * "ns/name" (linear probing, backward-shift deletion: no tombstones, so
 * a steady churn of creates and deletes does not degrade it).  An entry
 * holds the object's compact JSON text with its resourceVersion (one
 * immutable, reference-counted chunk: inf_text) and the index buckets it
 * is in; an index maps each value to a bucket holding a pointer set of
 * entries.  Trees are not kept: a jansson tree of a 1 KiB object takes
 * about 3 KB in some 30 allocations, the text 1.1 KB in one.  A watch
 * event is decoded once (watchstream's decoder, which also reports the
 * object's bytes when they are compact, so they are copied as they came
 * instead of serialised again); the tree serves the indexes and the
 * handlers and is freed when they return.  Old states, relists, resyncs,
 * initial adds and cache readers decode the text when needed (about
 * 1 µs per KiB).  Every event is O(1): one hash lookup, a few set
 * operations per index.  Readers take the informer's read lock only to
 * take references to texts, and decode after it.  The loop thread is the
 * only writer of the object table, so it reads that table without the
 * lock.  Texts and entries come from the loop's store (inf_pool below),
 * which maps memory in pre-faulted slabs.
 *
 * Costs, measured with 1 KiB ConfigMaps on this project's 2-core test
 * machine (tests/bench/controller_bench, and the same informer fed a
 * canned stream so that only its own work counts): about 5-7 µs of the
 * loop thread per create event and 3 µs per update when events come in
 * full 64 KiB reads, mostly the tree's allocations and frees and the
 * handler; when kubesim writes them live, each wake-up brings a few
 * events and its system calls (epoll_wait, recv, libcurl's poll) double
 * that.  The cache holds about 1.25 times the objects' JSON size.
 *
 * Locks, in the order they may nest: inf->hmtx (dispatch: held while
 * handlers run), then inf->rw (the cache) or loop->mtx (registry, command
 * queue, reference counts; a handler adding a handler posts a command);
 * nothing is taken while rw, loop->mtx or inf->sync_mtx is held.  The
 * store's loop->pool.mtx is a leaf: taken with nothing else held.
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
#include <sys/mman.h>
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

/* ---- the loop's store for cache texts and entries -------------------- */

/*
 * Why.  A cache that grows writes fresh memory for every new object, and
 * glibc's heap grows a page at a time: each first touch is a page fault.
 * On the virtual machines we measure on (PVM), a fault costs about 20 µs,
 * so a 1.1 KB object cost about 6 µs of faults, half of what a create
 * event cost in all.  Mapping memory in slabs with MAP_POPULATE fills
 * every page in one system call, about 17 times cheaper per byte.
 *
 * How.  Chunks come in 64 size classes: multiples of 16 up to 256 bytes,
 * then 8 classes per doubling up to 16 KiB (rounding wastes at most 12.5%,
 * 6% on average); larger requests go to malloc.  A chunk is taken from
 * its class's free list, else cut from the current slab; a slab's tail
 * that is too short for a request is cut into free chunks.  Slabs are
 * 64 KiB at first, doubling up to 2 MiB, so a loop with a few small
 * informers maps little.  Freed chunks are reused by any informer of the
 * loop; memory goes back to the system only when the loop is destroyed
 * (glibc's heap, likewise, rarely returns memory from its middle).
 *
 * Under AddressSanitizer the store is bypassed (everything comes from
 * malloc) so that the lifetimes of texts and entries stay checked.
 *
 * Threads: chunks are allocated on the loop thread; they are freed there
 * or by a reader dropping the last reference of a text replaced
 * meanwhile, so the store is under its own mutex, held only for a list
 * operation (or the mmap of a new slab).
 */
#define POOL_CLASSES 64
#define POOL_MAX_CHUNK ((size_t) 16 << 10)
#define POOL_FIRST_SLAB ((size_t) 64 << 10)
#define POOL_MAX_SLAB ((size_t) 2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ENABLED 0
#endif
#endif
#ifndef POOL_ENABLED
#define POOL_ENABLED 1
#endif

typedef struct pool_slab {
	struct pool_slab *next;
	size_t            size;
} pool_slab;

typedef struct inf_pool {
	pthread_mutex_t mtx;
	void           *free[POOL_CLASSES]; /* chunks linked by first word */
	char           *bump, *bump_end;    /* the current slab's rest */
	pool_slab      *slabs;              /* owned: every mapping */
	size_t          next_slab;          /* size of the next mapping */
	size_t          mapped, in_use;     /* bytes */
} inf_pool;

/* The class of a request of `n` (1..POOL_MAX_CHUNK) bytes, and its size
 * in `*size`. */
static unsigned
pool_class(size_t n, size_t *size)
{
	if (n <= 256) {
		size_t c = n <= 16 ? 1 : (n + 15) / 16;
		*size    = c * 16;
		return (unsigned) c - 1;
	}
	unsigned k
	    = 63 - (unsigned) __builtin_clzll((unsigned long long) n - 1);
	size_t base = (size_t) 1 << k, step = base >> 3;
	size_t i = (n - base + step - 1) / step; /* 1..8 */
	*size    = base + i * step;
	return 16 + (k - 8) * 8 + (unsigned) i - 1;
}

static size_t
pool_class_size(unsigned c)
{
	if (c < 16)
		return ((size_t) c + 1) * 16;
	unsigned k    = 8 + (c - 16) / 8;
	size_t   base = (size_t) 1 << k;
	return base + (size_t) ((c - 16) % 8 + 1) * (base >> 3);
}

static void
pool_init(inf_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mtx, NULL);
	p->next_slab = POOL_FIRST_SLAB;
}

static void
pool_fini(inf_pool *p)
{
	for (pool_slab *s = p->slabs, *next; s != NULL; s = next) {
		next = s->next;
		munmap(s, s->size);
	}
	p->slabs = NULL;
	pthread_mutex_destroy(&p->mtx);
}

/* Cuts the rest of the current slab into free chunks, largest first. */
static void
pool_retire_rest_locked(inf_pool *p)
{
	for (unsigned c = POOL_CLASSES; c-- > 0;) {
		size_t sz = pool_class_size(c);
		while ((size_t) (p->bump_end - p->bump) >= sz) {
			*(void **) p->bump = p->free[c];
			p->free[c]         = p->bump;
			p->bump += sz;
		}
	}
}

/* A chunk for `n` bytes, or NULL when the store does not serve that
 * size (the caller then uses malloc). */
static void *
pool_alloc(inf_pool *p, size_t n)
{
	if (!POOL_ENABLED || n == 0 || n > POOL_MAX_CHUNK)
		return NULL;
	size_t   sz;
	unsigned c = pool_class(n, &sz);
	mtx_lock(&p->mtx);
	void *chunk = p->free[c];
	if (chunk != NULL) {
		p->free[c] = *(void **) chunk;
	} else {
		if ((size_t) (p->bump_end - p->bump) < sz) {
			pool_retire_rest_locked(p);
			size_t ssz = p->next_slab;
			if (p->next_slab < POOL_MAX_SLAB)
				p->next_slab *= 2;
			void *m = mmap(NULL, ssz, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (m == MAP_FAILED)
				mcf_panic("informer: out of memory (mmap)");
			pool_slab *s = m;
			s->size      = ssz;
			s->next      = p->slabs;
			p->slabs     = s;
			p->mapped += ssz;
			p->bump     = (char *) m + 16;
			p->bump_end = (char *) m + ssz;
		}
		chunk = p->bump;
		p->bump += sz;
	}
	p->in_use += sz;
	mtx_unlock(&p->mtx);
	return chunk;
}

/* Frees a chunk pool_alloc gave for `n` bytes. */
static void
pool_free(inf_pool *p, void *chunk, size_t n)
{
	size_t   sz;
	unsigned c = pool_class(n, &sz);
	mtx_lock(&p->mtx);
	*(void **) chunk = p->free[c];
	p->free[c]       = chunk;
	p->in_use -= sz;
	mtx_unlock(&p->mtx);
}

/* mcf_malloc, or the store when it serves `n`. */
static void *
pool_get(inf_pool *p, size_t n)
{
	void *chunk = pool_alloc(p, n);
	return chunk != NULL ? chunk : mcf_malloc(n);
}

/* Frees what pool_get gave for `n` bytes. */
static void
pool_put(inf_pool *p, void *chunk, size_t n)
{
	if (POOL_ENABLED && n > 0 && n <= POOL_MAX_CHUNK)
		pool_free(p, chunk, n);
	else
		free(chunk);
}

/* ---- cached texts ---------------------------------------------------- */

/* One version of a cached object: its compact JSON text and its
 * resourceVersion, in one chunk of the loop's store.  Immutable once
 * made; the cache holds one reference and a reader decoding it holds
 * another for the time of the decode, so the count is atomic. */
typedef struct inf_text {
	uint32_t  refs; /* atomic (__atomic builtins) */
	size_t    len;  /* bytes of text */
	inf_pool *pool; /* borrowed: the store holding the text */
	char      s[];  /* text, '\0', resourceVersion, '\0' */
} inf_text;

static size_t
text_size(size_t len, size_t rvlen)
{
	return sizeof(inf_text) + len + rvlen + 2;
}

/* A new text of `s[0..n)` (one reference) with resourceVersion `rv`
 * (NULL: ""). */
static inf_text *
text_new(inf_pool *pool, const char *s, size_t n, const char *rv)
{
	size_t    rl = rv != NULL ? strlen(rv) : 0;
	inf_text *t  = pool_get(pool, text_size(n, rl));
	t->refs      = 1;
	t->len       = n;
	t->pool      = pool;
	memcpy(t->s, s, n);
	t->s[n] = '\0';
	if (rl > 0)
		memcpy(t->s + n + 1, rv, rl);
	t->s[n + 1 + rl] = '\0';
	return t;
}

/* A new text holding `obj` serialised compactly. */
static inf_text *
text_dump(inf_pool *pool, const json_t *obj, const char *rv)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	if (s == NULL)
		mcf_panic("informer: json_dumps failed");
	inf_text *t = text_new(pool, s, strlen(s), rv);
	free(s);
	return t;
}

static const char *
text_rv(const inf_text *t)
{
	return t->s + t->len + 1;
}

static inf_text *
text_ref(inf_text *t)
{
	__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

static void
text_release(inf_text *t)
{
	if (t == NULL
	    || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pool_put(t->pool, t, text_size(t->len, strlen(text_rv(t))));
}

/* A new tree decoded from `t`.  The text was made from a decoded object,
 * so it always decodes. */
static json_t *
text_decode(const inf_text *t)
{
	json_t     *obj = NULL;
	mcf_errinfo ei;
	if (mcf_ws_decode(t->s, t->len, &obj, &ei) != MCF_OK)
		mcf_panic("informer: a cached text does not decode");
	return obj;
}

/* ---- cache entries and indexes -------------------------------------- */

typedef struct inf_index  inf_index;
typedef struct inf_bucket inf_bucket;

/* A cached object.  Its index values are not recomputed from the old
 * version (there is no old tree any more): the entry lists the buckets
 * it is in, each of which knows its index. */
typedef struct inf_ent {
	inf_text *text; /* owned reference: the current version */
	union {
		inf_bucket  *one;  /* nlinks == 1 */
		inf_bucket **many; /* owned, nlinks > 1 */
	} links;
	uint32_t nlinks;
	uint32_t klen;
	uint64_t hash;  /* of key */
	char     key[]; /* "ns/name" or "name", NUL-terminated */
} inf_ent;

struct inf_bucket {
	pset       ents; /* inf_ent * (borrowed from the object table) */
	inf_index *idx;  /* borrowed: the index holding the bucket */
	uint64_t   hash;
	size_t     vlen;
	char       value[];
};

struct inf_index {
	char            *name; /* owned */
	mcf_inf_index_fn fn;
	void            *arg;     /* borrowed */
	smap             buckets; /* value -> inf_bucket * (owned) */
};

static inf_bucket **
ent_links(inf_ent *e)
{
	return e->nlinks <= 1 ? &e->links.one : e->links.many;
}

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

/* The bucket of value `v` in `x`, created if needed, with `e` in it. */
static inf_bucket *
idx_link(inf_index *x, inf_ent *e, const char *v)
{
	size_t      vl = strlen(v);
	uint64_t    h  = hash_bytes(v, vl);
	inf_bucket *b  = smap_get(&x->buckets, v, vl, h);
	if (b == NULL) {
		b       = mcf_calloc(1, sizeof(*b) + vl + 1);
		b->idx  = x;
		b->hash = h;
		b->vlen = vl;
		memcpy(b->value, v, vl + 1);
		smap_put(&x->buckets, b->value, vl, h, b);
	}
	pset_add(&b->ents, e);
	return b;
}

/* Takes `e` out of `b`, freeing the bucket when it empties. */
static void
idx_unlink(inf_bucket *b, inf_ent *e)
{
	pset_del(&b->ents, e);
	if (b->ents.n == 0) {
		smap_del(&b->idx->buckets, b->value, b->vlen, b->hash);
		pset_fini(&b->ents);
		free(b);
	}
}

/* Replaces the links of `e` by `links[0..n)`. */
static void
ent_set_links(inf_ent *e, inf_bucket **links, size_t n)
{
	if (e->nlinks > 1)
		free(e->links.many);
	e->nlinks = (uint32_t) n;
	if (n == 1) {
		e->links.one = links[0];
	} else if (n > 1) {
		e->links.many = mcf_malloc(n * sizeof(*links));
		memcpy(e->links.many, links, n * sizeof(*links));
	} else {
		e->links.one = NULL;
	}
}

/* Takes `e` out of every index.  Write lock held. */
static void
ent_unlink_all(inf_ent *e)
{
	inf_bucket **l = ent_links(e);
	for (uint32_t i = 0; i < e->nlinks; i++)
		idx_unlink(l[i], e);
	ent_set_links(e, NULL, 0);
}

#define IDX_STACK 8

/* Puts `e` in index `x` under the values of `obj` (NULL: none), moving
 * it out of the values it had there when they differ.  Write lock
 * held. */
static void
idx_update(inf_index *x, inf_ent *e, const json_t *obj)
{
	const char  *s_new[IDX_STACK];
	const char **v_new = NULL, **h_new = NULL;
	size_t       n_new = 0;
	if (obj != NULL)
		n_new = idx_values(x, obj, s_new, IDX_STACK, &v_new, &h_new);
	/* Unchanged (the usual update): the entry's links in `x`, in order,
	 * are the distinct non-NULL values. */
	inf_bucket **l    = ent_links(e);
	size_t       j    = 0;
	bool         same = true;
	for (size_t i = 0; same && i < n_new; i++) {
		const char *v = v_new[i];
		if (v == NULL)
			continue;
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++)
			dup = v_new[k] != NULL && strcmp(v_new[k], v) == 0;
		if (dup)
			continue;
		while (j < e->nlinks && l[j]->idx != x)
			j++;
		same = j < e->nlinks && strcmp(l[j]->value, v) == 0;
		j++;
	}
	while (same && j < e->nlinks)
		same = l[j++]->idx != x;
	if (same) {
		free(h_new);
		return;
	}
	/* Keep the other indexes' links, drop this one's, add the new. */
	size_t       cap = e->nlinks + n_new;
	inf_bucket  *stack[IDX_STACK * 2];
	inf_bucket **nl
	    = cap <= IDX_STACK * 2 ? stack : mcf_malloc(cap * sizeof(*nl));
	size_t nn = 0;
	for (uint32_t i = 0; i < e->nlinks; i++) {
		if (l[i]->idx != x)
			nl[nn++] = l[i];
		else
			idx_unlink(l[i], e);
	}
	for (size_t i = 0; i < n_new; i++) {
		if (v_new[i] == NULL)
			continue;
		inf_bucket *b   = idx_link(x, e, v_new[i]);
		bool        dup = false;
		for (size_t k = 0; k < nn && !dup; k++)
			dup = nl[k] == b;
		if (!dup)
			nl[nn++] = b;
	}
	ent_set_links(e, nl, nn);
	if (nl != stack)
		free(nl);
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

typedef struct inf_hdl {
	mcf_inf_handler h;
	uint64_t        id;
	bool            pending;    /* initial adds not delivered yet */
	bool            delivering; /* in the current initial-adds pass */
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
	/* Texts and entries of every informer's cache (its own mutex). */
	inf_pool pool;
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
	mcf_ws            *ws;    /* owned */
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
	else {
		inf->st.request_errors++;
		inf->st.consecutive_errors++;
	}
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
	inf->st.last_err           = 0;
	inf->st.consecutive_errors = 0;
	inf->st.last_http_code     = http;
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

/* An object for the handlers: a tree at hand (an event's), or a cached
 * text decoded when the first handler needs it, once for all of them. */
typedef struct inf_lazy {
	const inf_text *text;  /* borrowed: decoded when `obj` is NULL */
	json_t         *obj;   /* borrowed, or owned when `owned` */
	bool            owned; /* `obj` was decoded here */
} inf_lazy;

static inf_lazy
lazy_of_obj(json_t *obj)
{
	return (inf_lazy) { NULL, obj, false };
}

static inf_lazy
lazy_of_text(const inf_text *t)
{
	return (inf_lazy) { t, NULL, false };
}

static const json_t *
lazy_get(inf_lazy *l)
{
	if (l->obj == NULL && l->text != NULL) {
		l->obj   = text_decode(l->text);
		l->owned = true;
	}
	return l->obj;
}

/* Drops a decoded tree; handlers may still hold references to it. */
static void
lazy_fini(inf_lazy *l)
{
	if (l->owned)
		obj_release(l->obj);
	l->obj   = NULL;
	l->owned = false;
}

/* Calls the handlers for one event.  `old` (EV_UPDATE) is decoded only
 * for handlers with want_old; old == obj is a resync: every handler gets
 * the one tree twice. */
static void
dispatch(mcf_inf *inf, int kind, inf_lazy *old, inf_lazy *obj, bool initial)
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
				h.on_add(h.arg, lazy_get(obj), initial);
			break;
		case EV_UPDATE:
			if (h.on_update != NULL) {
				const json_t *n = lazy_get(obj);
				const json_t *o = old == obj ? n
				    : h.want_old             ? lazy_get(old)
				                             : NULL;
				h.on_update(h.arg, o, n);
			}
			break;
		default:
			if (h.on_delete != NULL)
				h.on_delete(h.arg, lazy_get(obj));
			break;
		}
	}
	tls_dispatch = NULL;
	mtx_unlock(&inf->hmtx);
}

/* Gives handlers added since the last call their initial adds: each
 * cached object is decoded once for all of them. */
static void
deliver_initial(mcf_inf *inf)
{
	if (!atomic_exchange(&inf->hpending, false))
		return;
	mtx_lock(&inf->hmtx);
	tls_dispatch = inf;
	/* The handlers of this pass: one added meanwhile (by a handler)
	 * stays pending for the next pass, which its add posted. */
	bool any = false;
	for (size_t i = 0; i < inf->nhdl; i++) {
		inf->hdl[i].delivering = inf->hdl[i].pending;
		any |= inf->hdl[i].pending && inf->hdl[i].h.on_add != NULL;
	}
	/* The loop thread is the only writer of objs: no lock. */
	for (size_t j = 0; any && j < inf->objs.cap; j++) {
		if (inf->objs.s[j].key == NULL)
			continue;
		inf_ent *e = inf->objs.s[j].val;
		inf_lazy l = lazy_of_text(e->text);
		for (size_t i = 0; i < inf->nhdl; i++) {
			mcf_inf_handler h = inf->hdl[i].h;
			if (inf->hdl[i].delivering && h.on_add != NULL)
				h.on_add(h.arg, lazy_get(&l), true);
		}
		lazy_fini(&l);
	}
	for (size_t i = 0; i < inf->nhdl; i++) {
		if (inf->hdl[i].delivering)
			inf->hdl[i].pending = false;
		inf->hdl[i].delivering = false;
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
	size_t nl = strlen(name);
	size_t sl = ns != NULL ? strlen(ns) : 0;
	size_t n  = sl > 0 ? sl + 1 + nl : nl;
	if (n >= INF_KEY_MAX)
		return 0;
	if (sl > 0) {
		memcpy(buf, ns, sl);
		buf[sl] = '/';
		memcpy(buf + sl + 1, name, nl + 1);
	} else {
		memcpy(buf, name, nl + 1);
	}
	return n;
}

static const char *
obj_rv(const json_t *obj)
{
	return json_string_value(json_object_get(
	    json_object_get(obj, "metadata"), "resourceVersion"));
}

/* controller-runtime's default transform: managedFields are large and no
 * controller reads them from the cache.  True when there were some. */
static bool
strip(json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	return json_is_object(meta)
	    && json_object_del(meta, "managedFields") == 0;
}

/* A new entry for `key` holding `text` (stolen), in the loop's store. */
static inf_ent *
ent_new(inf_pool *pool, const char *key, size_t kl, uint64_t h, inf_text *text)
{
	inf_ent *e   = pool_get(pool, sizeof(*e) + kl + 1);
	e->text      = text;
	e->nlinks    = 0;
	e->links.one = NULL;
	e->klen      = (uint32_t) kl;
	e->hash      = h;
	memcpy(e->key, key, kl);
	e->key[kl] = '\0';
	return e;
}

/* Frees an entry that is in no index. */
static void
ent_free(inf_pool *pool, inf_ent *e)
{
	text_release(e->text);
	if (e->nlinks > 1)
		free(e->links.many);
	pool_put(pool, e, sizeof(*e) + e->klen + 1);
}

/* Inserts `e` (steals it), indexed by `obj` (its decoded text); write
 * lock taken here.  `event`: count a watch event of resourceVersion
 * `ev_rv`. */
static void
cache_insert(
    mcf_inf *inf, inf_ent *e, const json_t *obj, bool event, const char *ev_rv)
{
	wr_lock(&inf->rw);
	smap_put(&inf->objs, e->key, e->klen, e->hash, e);
	for (size_t i = 0; i < inf->nidx; i++)
		idx_update(inf->idx[i], e, obj);
	if (event) {
		inf->st.events++;
		stats_rv_locked(inf, ev_rv);
	}
	rw_unlock(&inf->rw);
}

/* Replaces the text of `e` by `text` (stolen), indexed by `obj`; returns
 * the old text (a reference the caller drops). */
static inf_text *
cache_replace(mcf_inf *inf, inf_ent *e, const json_t *obj, inf_text *text,
    bool event, const char *ev_rv)
{
	wr_lock(&inf->rw);
	inf_text *old = e->text;
	for (size_t i = 0; i < inf->nidx; i++)
		idx_update(inf->idx[i], e, obj);
	e->text = text;
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
	ent_unlink_all(e);
	smap_del(&inf->objs, e->key, e->klen, e->hash);
	if (event) {
		inf->st.events++;
		stats_rv_locked(inf, ev_rv);
	}
	rw_unlock(&inf->rw);
}

/* Applies one watch event; steals `obj` (stripped, not yet shared) and
 * `text` (its cache copy; NULL for DELETED). */
static void
apply_event(mcf_inf *inf, mcf_ws_type type, json_t *obj, inf_text *text,
    const char *rv)
{
	char   key[INF_KEY_MAX];
	size_t kl = obj_key(obj, key);
	if (kl == 0) {
		mcf_log_warn("INF-EVENT",
		    "%s: %s event without a usable metadata.name ignored",
		    inf->desc, mcf_ws_type_name(type));
		text_release(text);
		json_decref(obj);
		return;
	}
	uint64_t h  = hash_bytes(key, kl);
	inf_ent *e  = smap_get(&inf->objs, key, kl, h);
	inf_lazy lo = lazy_of_obj(obj);
	if (type == MCF_WS_DELETED) {
		text_release(text);
		if (e != NULL) {
			cache_remove(inf, e, true, rv);
			dispatch(inf, EV_DELETE, NULL, &lo, false);
			ent_free(&inf->loop->pool, e);
		}
	} else if (e != NULL) {
		inf_text *old  = cache_replace(inf, e, obj, text, true, rv);
		inf_lazy  lold = lazy_of_text(old);
		dispatch(inf, EV_UPDATE, &lold, &lo, false);
		lazy_fini(&lold);
		text_release(old);
	} else {
		e = ent_new(&inf->loop->pool, key, kl, h, text);
		cache_insert(inf, e, obj, true, rv);
		dispatch(inf, EV_ADD, NULL, &lo, false);
	}
	obj_release(obj); /* handlers may have kept it */
}

static void
staging_clear(mcf_inf *inf)
{
	for (size_t i = 0; i < inf->staging.cap; i++)
		if (inf->staging.s[i].key != NULL)
			ent_free(&inf->loop->pool, inf->staging.s[i].val);
	smap_fini(&inf->staging);
}

/* Merges the complete list in `staging` into the cache and tells the
 * handlers the difference: adds, updates (resourceVersion changed),
 * deletes (cached, not listed).  The first list's adds are initial.
 * Staged entries hold texts; each new or changed one is decoded once,
 * for its indexes and the handlers. */
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
			inf_lazy l = lazy_of_text(gone[i]->text);
			dispatch(inf, EV_DELETE, NULL, &l, false);
			lazy_fini(&l);
			ent_free(&inf->loop->pool, gone[i]);
		}
		free(gone);
	}
	for (size_t i = 0; i < st.cap; i++) {
		if (st.s[i].key == NULL)
			continue;
		inf_ent *n = st.s[i].val;
		inf_ent *e = smap_get(&inf->objs, n->key, n->klen, n->hash);
		if (e == NULL) {
			inf_lazy l = lazy_of_text(n->text);
			cache_insert(inf, n, lazy_get(&l), false, NULL);
			dispatch(inf, EV_ADD, NULL, &l, first);
			lazy_fini(&l);
			continue;
		}
		if (strcmp(text_rv(e->text), text_rv(n->text)) != 0
		    || text_rv(n->text)[0] == '\0') {
			inf_lazy  l    = lazy_of_text(n->text);
			inf_text *old  = cache_replace(inf, e, lazy_get(&l),
			     text_ref(n->text), false, NULL);
			inf_lazy  lold = lazy_of_text(old);
			dispatch(inf, EV_UPDATE, &lold, &l, false);
			lazy_fini(&lold);
			lazy_fini(&l);
			text_release(old);
		}
		/* `st` is not read after this: its slots may now point at
		 * freed keys. */
		ent_free(&inf->loop->pool, n);
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
	int ra = mcf_kc_retry_after(data, n);
	if (ra > 0)
		inf->retry_after = ra;
	return n;
}

/* One watch event, on the loop thread inside the parser, inside
 * libcurl's write callback: applied at once, so that its tree is freed
 * before the next event is decoded.  (Freeing a whole chunk's trees in a
 * row, as an earlier version did, overflowed malloc's per-thread cache
 * into its fast bins, and the next text allocation, a "large" request,
 * then consolidated all of them: that alone took 45% of the loop thread.)
 * The parser drops its reference with an atomic decrement, so handlers
 * may keep the tree.  The cache's copy is made here, while the line is at
 * hand: the object's own bytes when the server sent them compact and
 * there were no managedFields to strip, else the stripped tree
 * serialised.  Returns non-zero to end the stream (a relist or an
 * error). */
static int
on_ws_event(const mcf_ws_event *ev, void *arg)
{
	mcf_inf *inf = arg;
	switch (ev->type) {
	case MCF_WS_ADDED:
	case MCF_WS_MODIFIED:
	case MCF_WS_DELETED:
	case MCF_WS_BOOKMARK: {
		if (inf->stream_events++ == 0)
			inf->fails = 0; /* the watch works: reset backoff */
		set_rv(inf, ev->resource_version);
		if (ev->type == MCF_WS_BOOKMARK) {
			wr_lock(&inf->rw);
			inf->st.bookmarks++;
			stats_rv_locked(inf, inf->rv);
			rw_unlock(&inf->rw);
			return 0;
		}
		json_t   *obj      = json_incref(ev->object);
		inf_text *text     = NULL;
		bool      stripped = strip(obj);
		if (ev->type != MCF_WS_DELETED) {
			if (!stripped && ev->object_text != NULL)
				text = text_new(&inf->loop->pool,
				    ev->object_text, ev->object_len,
				    ev->resource_version);
			else
				text = text_dump(&inf->loop->pool, obj,
				    ev->resource_version);
		}
		apply_event(inf, ev->type, obj, text, inf->rv);
		return 0;
	}
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
		/* Events are applied as they are parsed; those before an
		 * error are good. */
		int rc = mcf_ws_feed(
		    inf->ws, data, n, on_ws_event, inf, &inf->ws_ei);
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
	/* libcurl 7.88 refuses a new receive buffer size while a handle
	 * still has its buffer, which it keeps after some failed transfers
	 * (a host that does not resolve): then start over with a new handle
	 * rather than fail the request. */
	if (curl_easy_setopt(inf->easy, CURLOPT_BUFFERSIZE,
	        (long) INF_RECV_BUFFER)
	    != CURLE_OK) {
		curl_easy_cleanup(inf->easy);
		inf->easy = curl_easy_init();
		if (inf->easy == NULL)
			mcf_panic("curl_easy_init failed");
		if (curl_easy_setopt(inf->easy, CURLOPT_BUFFERSIZE,
		        (long) INF_RECV_BUFFER)
		    != CURLE_OK)
			mcf_log_warn("INF-CURL",
			    "libcurl refused a receive buffer of %d bytes; "
			    "using its default",
			    INF_RECV_BUFFER);
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
	if (req == REQ_WATCH) {
		/* A watch keeps only an error body: the list pages' buffer
		 * goes (4 KiB and up per informer, held for hours). */
		free(inf->body.p);
		inf->body.p   = NULL;
		inf->body.cap = 0;
	}
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
	mcf_errinfo je;
	json_t     *j = NULL;
	if (mcf_ws_decode(inf->body.p, inf->body.n, &j, &je) != MCF_OK) {
		snprintf(msg, msglen, "list body is not a JSON object: %.200s",
		    je.msg);
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
		inf_ent *e   = ent_new(&inf->loop->pool, key, n, h,
		      text_dump(&inf->loop->pool, it, obj_rv(it)));
		inf_ent *old = smap_put(&inf->staging, e->key, n, h, e);
		if (old != NULL)
			ent_free(&inf->loop->pool, old);
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
	inf->st.last_err           = 0;
	inf->st.consecutive_errors = 0;
	inf->st.last_http_code     = 200;
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
		/* Resync: every cached object to on_update(old == new),
		 * decoded once if some handler has on_update. */
		for (size_t i = 0; i < inf->objs.cap; i++) {
			if (inf->objs.s[i].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[i].val;
			inf_lazy l = lazy_of_text(e->text);
			dispatch(inf, EV_UPDATE, &l, &l, false);
			lazy_fini(&l);
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
	pool_init(&L->pool);
	int rc = pthread_create(&L->thread, NULL, loop_main, L);
	if (rc != 0) {
		curl_multi_cleanup(L->multi);
		close(L->epfd);
		close(L->evfd);
		pool_fini(&L->pool);
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
	pool_fini(&L->pool);
	pthread_mutex_destroy(&L->mtx);
	free(L);
}

void
mcf_inf_loop_mem(mcf_inf_loop *L, size_t *mapped, size_t *in_use)
{
	size_t m = 0, u = 0;
	if (L != NULL) {
		mtx_lock(&L->pool.mtx);
		m = L->pool.mapped;
		u = L->pool.in_use;
		mtx_unlock(&L->pool.mtx);
	}
	if (mapped != NULL)
		*mapped = m;
	if (in_use != NULL)
		*in_use = u;
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
			ent_free(&inf->loop->pool, inf->objs.s[i].val);
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
	inf_hdl *e    = &inf->hdl[inf->nhdl++];
	e->h          = *h;
	e->id         = ++inf->next_id;
	e->pending    = true;
	e->delivering = false;
	*id           = e->id;
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
		inf_ent *e   = inf->objs.s[i].val;
		json_t  *obj = text_decode(e->text);
		idx_update(x, e, obj);
		json_decref(obj); /* never shared */
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
	inf_ent  *e = smap_get(&inf->objs, key, kl, h);
	inf_text *t = e != NULL ? text_ref(e->text) : NULL;
	rw_unlock(&inf->rw);
	if (t == NULL)
		return NULL;
	json_t *obj = text_decode(t);
	text_release(t);
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
	/* The texts are taken under the lock and decoded after it. */
	inf_text **texts = NULL;
	size_t     k     = 0;
	if (index == NULL) {
		if (inf->objs.n > 0)
			texts = mcf_malloc(inf->objs.n * sizeof(*texts));
		for (size_t i = 0; i < inf->objs.cap; i++) {
			if (inf->objs.s[i].key == NULL)
				continue;
			inf_ent *e = inf->objs.s[i].val;
			texts[k++] = text_ref(e->text);
		}
	} else {
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
		if (b != NULL && b->ents.n > 0) {
			texts = mcf_malloc(b->ents.n * sizeof(*texts));
			for (size_t i = 0; i < b->ents.cap; i++) {
				inf_ent *e = b->ents.s[i];
				if (e != NULL)
					texts[k++] = text_ref(e->text);
			}
		}
	}
	rw_unlock(&inf->rw);
	if (k == 0) {
		free(texts);
		return MCF_OK;
	}
	json_t **a = mcf_malloc(k * sizeof(*a));
	for (size_t i = 0; i < k; i++) {
		a[i] = text_decode(texts[i]);
		text_release(texts[i]);
	}
	free(texts);
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
