/*
 * strmap.c — string → pointer map: open addressing with linear probing
 * over a power-of-two table, FNV-1a hashes (keys are names we created or
 * read from our own API server, not attacker-chosen at volume), and
 * tombstones for deletion.  The table doubles at 70% load counting
 * tombstones, and is rebuilt at the same size when tombstones dominate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strmap.h"

typedef struct slot {
	char    *key; /* owned; NULL: empty or tombstone */
	void    *val;
	uint64_t hash;
	bool     tomb;
} slot;

struct mcf_strmap {
	slot  *slots;
	size_t cap;   /* power of two */
	size_t count; /* live keys */
	size_t used;  /* live keys + tombstones */
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= UINT64_C(1099511628211);
	}
	return h ^ (h >> 29);
}

mcf_strmap *
mcf_strmap_create(void)
{
	mcf_strmap *m = mcf_calloc(1, sizeof(*m));
	m->cap        = 16;
	m->slots      = mcf_calloc(m->cap, sizeof(slot));
	return m;
}

void
mcf_strmap_destroy(mcf_strmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	free(m);
}

static slot *
find(const mcf_strmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
		slot *s = &m->slots[i];
		if (s->key == NULL && !s->tomb)
			return NULL;
		if (s->key != NULL && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

static void
rehash(mcf_strmap *m, size_t cap)
{
	slot  *old  = m->slots;
	size_t ocap = m->cap;
	m->slots    = mcf_calloc(cap, sizeof(slot));
	m->cap      = cap;
	m->used     = m->count;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].key == NULL)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (m->slots[j].key != NULL)
			j = (j + 1) & (cap - 1);
		m->slots[j]      = old[i];
		m->slots[j].tomb = false;
	}
	free(old);
}

void *
mcf_strmap_get(const mcf_strmap *m, const char *key)
{
	slot *s = find(m, key, hash_str(key));
	return s != NULL ? s->val : NULL;
}

void *
mcf_strmap_put(mcf_strmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	slot    *s = find(m, key, h);
	if (s != NULL) {
		void *prev = s->val;
		s->val     = value;
		return prev;
	}
	if ((m->used + 1) * 10 >= m->cap * 7)
		rehash(
		    m, m->count * 2 * 10 >= m->cap * 7 ? m->cap * 2 : m->cap);
	size_t mask = m->cap - 1;
	size_t i    = h & mask;
	while (m->slots[i].key != NULL)
		i = (i + 1) & mask;
	if (!m->slots[i].tomb)
		m->used++;
	m->slots[i] = (slot) { mcf_strdup(key), value, h, false };
	m->count++;
	return NULL;
}

void *
mcf_strmap_del(mcf_strmap *m, const char *key)
{
	slot *s = find(m, key, hash_str(key));
	if (s == NULL)
		return NULL;
	void *v = s->val;
	free(s->key);
	s->key  = NULL;
	s->val  = NULL;
	s->tomb = true;
	m->count--;
	return v;
}

size_t
mcf_strmap_count(const mcf_strmap *m)
{
	return m->count;
}

bool
mcf_strmap_next(
    const mcf_strmap *m, size_t *pos, const char **key, void **value)
{
	for (size_t i = *pos; i < m->cap; i++) {
		if (m->slots[i].key != NULL) {
			*pos = i + 1;
			if (key != NULL)
				*key = m->slots[i].key;
			if (value != NULL)
				*value = m->slots[i].val;
			return true;
		}
	}
	*pos = m->cap;
	return false;
}
