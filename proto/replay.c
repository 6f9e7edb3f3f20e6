/*
 * replay.c — bounded per-session sequence tracker (contract in replay.h).
 *
 * All entries live in one array allocated at creation.  A chained hash
 * table of uint32 indexes finds a session; a doubly linked list threaded
 * through the same entries keeps them in recency order, most recent at the
 * head, so the victim of an eviction is the tail.  Index UINT32_MAX means
 * "none".  Session ids come from authenticated peers and are random, but
 * they are still mixed with a per-tracker random seed before bucketing so
 * a peer cannot aim many sessions at one chain.
 */
#include "replay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "alloc.h"

#define NONE UINT32_MAX

typedef struct entry {
	uint64_t session;
	uint64_t last;
	uint32_t hnext; /* next in the hash chain */
	uint32_t prev;  /* recency list */
	uint32_t next;
} entry;

struct mcf_proto_replay {
	pthread_mutex_t mtx;
	entry          *e;       /* owned; capacity entries */
	uint32_t       *bucket;  /* owned; nbucket heads */
	uint32_t        nbucket; /* power of two */
	uint32_t        capacity;
	uint32_t        used;
	uint32_t        head, tail; /* recency list */
	uint64_t        seed;
	uint64_t        evictions;
};

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("proto replay: pthread_mutex_lock failed");
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("proto replay: pthread_mutex_unlock failed");
}

int
mcf_proto_replay_create(mcf_proto_replay **out, size_t capacity)
{
	if (capacity == 0)
		capacity = MCF_PROTO_REPLAY_DEFAULT_CAPACITY;
	if (capacity > (1u << 28))
		return MCF_EINVAL;
	mcf_proto_replay *rp = mcf_calloc(1, sizeof(*rp));
	if (pthread_mutex_init(&rp->mtx, NULL) != 0) {
		free(rp);
		return MCF_ESYS;
	}
	rp->capacity = (uint32_t) capacity;
	rp->nbucket  = 1;
	while (rp->nbucket < rp->capacity)
		rp->nbucket <<= 1;
	rp->e      = mcf_calloc(rp->capacity, sizeof(entry));
	rp->bucket = mcf_malloc(rp->nbucket * sizeof(uint32_t));
	for (uint32_t i = 0; i < rp->nbucket; i++)
		rp->bucket[i] = NONE;
	rp->head = rp->tail = NONE;
	if (RAND_bytes((unsigned char *) &rp->seed, sizeof(rp->seed)) != 1)
		rp->seed = 0x9e3779b97f4a7c15ULL;
	*out = rp;
	return MCF_OK;
}

void
mcf_proto_replay_destroy(mcf_proto_replay *rp)
{
	if (rp == NULL)
		return;
	free(rp->e);
	free(rp->bucket);
	pthread_mutex_destroy(&rp->mtx);
	free(rp);
}

/* splitmix64 finaliser. */
static uint32_t
bucket_of(const mcf_proto_replay *rp, uint64_t session)
{
	uint64_t x = session ^ rp->seed;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (uint32_t) (x & (rp->nbucket - 1));
}

static void
list_unlink(mcf_proto_replay *rp, uint32_t i)
{
	entry *e = &rp->e[i];
	if (e->prev != NONE)
		rp->e[e->prev].next = e->next;
	else
		rp->head = e->next;
	if (e->next != NONE)
		rp->e[e->next].prev = e->prev;
	else
		rp->tail = e->prev;
	e->prev = e->next = NONE;
}

static void
list_push_head(mcf_proto_replay *rp, uint32_t i)
{
	entry *e = &rp->e[i];
	e->prev  = NONE;
	e->next  = rp->head;
	if (rp->head != NONE)
		rp->e[rp->head].prev = i;
	rp->head = i;
	if (rp->tail == NONE)
		rp->tail = i;
}

static void
hash_remove(mcf_proto_replay *rp, uint32_t i)
{
	uint32_t *pp = &rp->bucket[bucket_of(rp, rp->e[i].session)];
	while (*pp != NONE) {
		if (*pp == i) {
			*pp = rp->e[i].hnext;
			return;
		}
		pp = &rp->e[*pp].hnext;
	}
}

int
mcf_proto_replay_check(
    mcf_proto_replay *rp, uint64_t session, uint64_t seq, uint64_t *last)
{
	if (seq == 0) {
		if (last != NULL)
			*last = 0;
		return MCF_EPROTO;
	}
	lock(&rp->mtx);
	uint32_t b = bucket_of(rp, session);
	for (uint32_t i = rp->bucket[b]; i != NONE; i = rp->e[i].hnext) {
		if (rp->e[i].session != session)
			continue;
		if (seq <= rp->e[i].last) {
			if (last != NULL)
				*last = rp->e[i].last;
			unlock(&rp->mtx);
			return MCF_EPROTO;
		}
		rp->e[i].last = seq;
		if (rp->head != i) {
			list_unlink(rp, i);
			list_push_head(rp, i);
		}
		unlock(&rp->mtx);
		return MCF_OK;
	}
	uint32_t i;
	if (rp->used < rp->capacity) {
		i = rp->used++;
	} else {
		i = rp->tail;
		list_unlink(rp, i);
		hash_remove(rp, i);
		rp->evictions++;
	}
	rp->e[i].session = session;
	rp->e[i].last    = seq;
	rp->e[i].hnext   = rp->bucket[b];
	rp->bucket[b]    = i;
	list_push_head(rp, i);
	unlock(&rp->mtx);
	return MCF_OK;
}

size_t
mcf_proto_replay_sessions(mcf_proto_replay *rp)
{
	lock(&rp->mtx);
	size_t n = rp->used;
	unlock(&rp->mtx);
	return n;
}

uint64_t
mcf_proto_replay_evictions(mcf_proto_replay *rp)
{
	lock(&rp->mtx);
	uint64_t n = rp->evictions;
	unlock(&rp->mtx);
	return n;
}
