/*
 * metrics.c — Prometheus metrics registry and text exposition.
 *
 * Storage.  A registry keeps its families in an array (registration is
 * rare, so lookups by name are linear) and its collectors in a list.  A
 * family keeps its series in a chained hash table keyed by the label
 * values, and in a creation-order list for rendering.  Series are never
 * freed before the registry, which is what lets callers keep series
 * pointers and update them without any lock.
 *
 * Values.  Counter and gauge values, and histogram sums, are doubles kept
 * as their bit patterns in _Atomic uint64_t and updated with a
 * compare-and-swap loop.  A histogram keeps one non-cumulative count per
 * bucket (the last one is +Inf) and no separate count: the renderer reads
 * the buckets once, accumulates them and uses the total as _count, so
 * _count always equals the +Inf bucket even while observations race with
 * the render.
 *
 * Rendering.  Every sample goes through one writer, registered families
 * first and then each collector in turn.  The writer groups samples by
 * family name in a hash table, keeping for each sample its label text
 * (the sort key) and its finished output lines.  At the end the groups
 * are sorted by name and each group's samples by label text (ties keep
 * emission order, and a repeated label set keeps only its first sample),
 * and everything is written out under one # HELP / # TYPE header per
 * family.  Families are snapshotted under the locks; values are formatted
 * with no lock held.
 *
 * Collectors run with no lock held.  Each carries a busy count: the
 * renderer raises it (under the registry mutex) before calling, lowers it
 * afterwards and broadcasts `cv`; mcf_metrics_remove_collector() marks
 * the collector removed so no render starts it again, waits on `cv` until
 * it is idle, and only then unlinks and frees it.
 */
#include <math.h> /* isnan, isinf, INFINITY: macros, no libm needed */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "metrics.h"

enum mtype {
	MT_COUNTER = 1,
	MT_GAUGE,
	MT_HISTOGRAM,
};

struct mcf_metrics_series {
	mcf_metrics_family *fam;   /* borrowed: the owning family */
	mcf_metrics_series *chain; /* borrowed: next in the hash bucket */
	mcf_metrics_series *next;  /* borrowed: next in creation order */
	uint64_t            hash;
	char              **values; /* owned, nlabels owned strings */
	char               *ltext;  /* owned: escaped `a="x",b="y"` */
	_Atomic uint64_t    val;    /* counter/gauge value, histogram sum */
	_Atomic uint64_t   *bk;     /* owned, histogram: nbounds + 1 */
};

struct mcf_metrics_family {
	pthread_mutex_t mtx; /* guards the series table and list */
	mcf_metrics    *reg; /* borrowed */
	enum mtype      type;
	char           *name;   /* owned */
	char           *help;   /* owned, NULL for none */
	char          **labels; /* owned, nlabels owned strings */
	size_t          nlabels;
	double         *bounds; /* owned, histogram bounds */
	size_t          nbounds;

	mcf_metrics_series **tab; /* owned array; series owned via `head` */
	size_t               tab_size; /* power of two */
	size_t               nseries;
	mcf_metrics_series  *head;
	mcf_metrics_series  *tail;
};

typedef struct collector collector;
struct collector {
	mcf_metrics_collect_fn fn;
	void                  *arg; /* borrowed */
	int                    busy;
	bool                   removed;
	collector             *next; /* borrowed: list link, owned by reg */
};

struct mcf_metrics {
	pthread_mutex_t      mtx;
	pthread_cond_t       cv;   /* a collector became idle */
	mcf_metrics_family **fams; /* owned array of owned families */
	size_t               nfams;
	size_t               cap;
	collector           *colls; /* owned list */
};

/* ---- render-time grouping ---- */

typedef struct rsample {
	char  *key;  /* owned: label text, the sort key */
	char  *text; /* owned: the sample's finished lines */
	size_t seq;  /* emission order, for a stable sort */
} rsample;

typedef struct rgroup rgroup;
struct rgroup {
	char      *name; /* owned */
	char      *help; /* owned, NULL for none */
	enum mtype type;
	uint64_t   hash;
	rgroup    *chain; /* borrowed: next in the hash bucket */
	rsample   *v;     /* owned array */
	size_t     n;
	size_t     cap;
};

struct mcf_metrics_writer {
	rgroup **tab; /* owned array of owned groups */
	size_t   tab_size;
	size_t   ngroups;
	size_t   seq;
};

/* A growing string. */
typedef struct sbuf {
	char  *p;
	size_t len;
	size_t cap;
} sbuf;

/* ---- small helpers ---- */

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("metrics: pthread_mutex_lock failed");
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("metrics: pthread_mutex_unlock failed");
}

static uint64_t
dbits(double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof(u));
	return u;
}

static double
bitsd(uint64_t u)
{
	double v;
	memcpy(&v, &u, sizeof(v));
	return v;
}

static void
atomic_add_double(_Atomic uint64_t *a, double v)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(a, &old,
	    dbits(bitsd(old) + v), memory_order_relaxed, memory_order_relaxed))
		;
}

static uint64_t
hash_bytes(uint64_t h, const char *s)
{
	/* FNV-1a, with a separator byte so ("ab","") != ("a","b"). */
	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= UINT64_C(0x100000001b3);
	}
	h ^= 0xff;
	h *= UINT64_C(0x100000001b3);
	return h;
}

#define HASH_INIT UINT64_C(0xcbf29ce484222325)

static void
sb_reserve(sbuf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	size_t cap = b->cap < 256 ? 256 : b->cap;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->p   = mcf_realloc(b->p, cap);
	b->cap = cap;
}

static void
sb_putn(sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_puts(sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void
sb_putc(sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

/* Hands the string over (new) and resets `b`; "" when nothing was put. */
static char *
sb_take(sbuf *b)
{
	char *p = b->p != NULL ? b->p : mcf_strdup("");
	b->p    = NULL;
	b->len  = 0;
	b->cap  = 0;
	return p;
}

/* Escapes a label value: backslash, double quote and newline. */
static void
sb_put_label_value(sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\':
			sb_putn(b, "\\\\", 2);
			break;
		case '"':
			sb_putn(b, "\\\"", 2);
			break;
		case '\n':
			sb_putn(b, "\\n", 2);
			break;
		default:
			sb_putc(b, *s);
		}
	}
}

/* Escapes a help text: backslash and newline. */
static void
sb_put_help(sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			sb_putn(b, "\\\\", 2);
		else if (*s == '\n')
			sb_putn(b, "\\n", 2);
		else
			sb_putc(b, *s);
	}
}

/*
 * Writes `v` the way Prometheus' parser (Go's strconv.ParseFloat) reads it
 * back exactly: "NaN", "+Inf", "-Inf"; integral values below 1e15 in
 * magnitude as plain integers; anything else in the shortest %g form that
 * round-trips.
 */
static void
sb_put_double(sbuf *b, double v)
{
	char buf[40];
	if (isnan(v)) {
		sb_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		sb_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v > -1e15 && v < 1e15 && (double) (int64_t) v == v) {
		snprintf(buf, sizeof(buf), "%lld", (long long) (int64_t) v);
		sb_puts(b, buf);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	sb_puts(b, buf);
}

static void
sb_put_u64(sbuf *b, uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
	sb_puts(b, buf);
}

/* ---- validation ---- */

bool
mcf_metrics_name_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c  = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || c == '_' || c == ':'
		    || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

bool
mcf_metrics_label_name_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	if (s[0] == '_' && s[1] == '_') /* reserved for Prometheus */
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c  = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || c == '_' || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF. */
static bool
utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *) str;
	while (*s != '\0') {
		unsigned c = *s;
		int      n;
		uint32_t cp;
		if (c < 0x80) {
			s++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n  = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n  = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n  = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false; /* also catches the NUL */
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
		    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static size_t
strv_len(const char *const *v)
{
	size_t n = 0;
	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

/* Checks a NULL-terminated list of label names: valid, distinct, and no
 * "le" for histograms. */
static bool
label_names_valid(const char *const *names, enum mtype type)
{
	size_t n = strv_len(names);
	for (size_t i = 0; i < n; i++) {
		if (!mcf_metrics_label_name_valid(names[i]))
			return false;
		if (type == MT_HISTOGRAM && strcmp(names[i], "le") == 0)
			return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				return false;
	}
	return true;
}

/* Checks histogram bounds; *eff gets the count without a trailing +Inf. */
static bool
bounds_valid(const double *bounds, size_t nbounds, size_t *eff)
{
	if (nbounds > 0 && bounds == NULL)
		return false;
	if (nbounds > 0 && isinf(bounds[nbounds - 1])
	    && bounds[nbounds - 1] > 0)
		nbounds--;
	for (size_t i = 0; i < nbounds; i++) {
		if (isnan(bounds[i]) || (isinf(bounds[i]) && bounds[i] > 0))
			return false;
		if (i > 0 && !(bounds[i] > bounds[i - 1]))
			return false;
	}
	*eff = nbounds;
	return true;
}

static const char *
type_name(enum mtype t)
{
	switch (t) {
	case MT_COUNTER:
		return "counter";
	case MT_GAUGE:
		return "gauge";
	case MT_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

/* If `name` is "<base>_bucket", "_sum" or "_count", returns <base> (new);
 * else NULL. */
static char *
hist_base(const char *name)
{
	static const char *const suf[] = { "_bucket", "_sum", "_count" };
	size_t                   len   = strlen(name);
	for (size_t i = 0; i < 3; i++) {
		size_t sl = strlen(suf[i]);
		if (len > sl && strcmp(name + len - sl, suf[i]) == 0)
			return mcf_strndup(name, len - sl);
	}
	return NULL;
}

/* ---- registry ---- */

int
mcf_metrics_create(mcf_metrics **out)
{
	mcf_metrics       *reg = mcf_calloc(1, sizeof(*reg));
	pthread_condattr_t ca;

	if (pthread_mutex_init(&reg->mtx, NULL) != 0)
		mcf_panic("metrics: pthread_mutex_init failed");
	if (pthread_condattr_init(&ca) != 0
	    || pthread_cond_init(&reg->cv, &ca) != 0)
		mcf_panic("metrics: pthread_cond_init failed");
	pthread_condattr_destroy(&ca);
	*out = reg;
	return MCF_OK;
}

static void
series_free(mcf_metrics_series *s, size_t nlabels)
{
	for (size_t i = 0; i < nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->ltext);
	free(s->bk);
	free(s);
}

static void
family_free(mcf_metrics_family *f)
{
	mcf_metrics_series *s = f->head;
	while (s != NULL) {
		mcf_metrics_series *next = s->next;
		series_free(s, f->nlabels);
		s = next;
	}
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->bounds);
	free(f->tab);
	free(f->name);
	free(f->help);
	pthread_mutex_destroy(&f->mtx);
	free(f);
}

/* Global mutable state, allowed by STYLE.md §9 for this reason: every
 * module of a binary registers into the one registry its /metrics endpoint
 * serves, without threading a pointer through every constructor.  It is
 * created once (pthread_once) and lives as long as the process. */
static mcf_metrics   *default_reg;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
default_init(void)
{
	(void) mcf_metrics_create(&default_reg);
}

mcf_metrics *
mcf_metrics_default(void)
{
	if (pthread_once(&default_once, default_init) != 0)
		mcf_panic("metrics: pthread_once failed");
	return default_reg;
}

void
mcf_metrics_destroy(mcf_metrics *reg)
{
	if (reg == NULL)
		return;
	if (reg == default_reg)
		mcf_panic("metrics: the default registry is never destroyed");
	for (size_t i = 0; i < reg->nfams; i++)
		family_free(reg->fams[i]);
	free(reg->fams);
	collector *c = reg->colls;
	while (c != NULL) {
		collector *next = c->next;
		free(c);
		c = next;
	}
	pthread_cond_destroy(&reg->cv);
	pthread_mutex_destroy(&reg->mtx);
	free(reg);
}

/* ---- families ---- */

static mcf_metrics_family *
family_find_locked(mcf_metrics *reg, const char *name)
{
	for (size_t i = 0; i < reg->nfams; i++)
		if (strcmp(reg->fams[i]->name, name) == 0)
			return reg->fams[i];
	return NULL;
}

static bool
family_same(const mcf_metrics_family *f, enum mtype type,
    const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds)
{
	if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
		return false;
	for (size_t i = 0; i < nlabels; i++)
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	for (size_t i = 0; i < nbounds; i++)
		if (f->bounds[i] != bounds[i])
			return false;
	return true;
}

/* True when a new family (`name`, `type`) would share a series name with
 * a registered one: a histogram's _bucket/_sum/_count. */
static bool
family_clash_locked(mcf_metrics *reg, const char *name, enum mtype type)
{
	char               *base = hist_base(name);
	mcf_metrics_family *f    = NULL;
	bool                clash;

	if (base != NULL)
		f = family_find_locked(reg, base);
	clash = f != NULL && f->type == MT_HISTOGRAM;
	free(base);
	for (size_t i = 0; type == MT_HISTOGRAM && !clash && i < reg->nfams;
	     i++) {
		base  = hist_base(reg->fams[i]->name);
		clash = base != NULL && strcmp(base, name) == 0;
		free(base);
	}
	return clash;
}

static mcf_metrics_series *series_new_locked(
    mcf_metrics_family *f, const char *const *values, uint64_t hash);

static int
family_register(mcf_metrics *reg, enum mtype type, const char *name,
    const char *help, const char *const *label_names, const double *bounds,
    size_t nbounds, mcf_metrics_family **out)
{
	size_t              nlabels = strv_len(label_names);
	size_t              eff     = 0;
	mcf_metrics_family *f;

	if (reg == NULL || out == NULL || !mcf_metrics_name_valid(name)
	    || !label_names_valid(label_names, type))
		return MCF_EINVAL;
	if (type == MT_HISTOGRAM && !bounds_valid(bounds, nbounds, &eff))
		return MCF_EINVAL;

	lock(&reg->mtx);
	f = family_find_locked(reg, name);
	if (f != NULL) {
		bool same
		    = family_same(f, type, label_names, nlabels, bounds, eff);
		unlock(&reg->mtx);
		if (!same)
			return MCF_EINVAL;
		*out = f;
		return MCF_OK;
	}
	if (family_clash_locked(reg, name, type)) {
		unlock(&reg->mtx);
		return MCF_EINVAL;
	}

	f = mcf_calloc(1, sizeof(*f));
	if (pthread_mutex_init(&f->mtx, NULL) != 0)
		mcf_panic("metrics: pthread_mutex_init failed");
	f->reg     = reg;
	f->type    = type;
	f->name    = mcf_strdup(name);
	f->help    = help != NULL && *help != '\0' ? mcf_strdup(help) : NULL;
	f->nlabels = nlabels;
	f->labels  = mcf_calloc(nlabels, sizeof(char *));
	for (size_t i = 0; i < nlabels; i++)
		f->labels[i] = mcf_strdup(label_names[i]);
	if (type == MT_HISTOGRAM) {
		f->nbounds = eff;
		f->bounds  = mcf_calloc(eff, sizeof(double));
		if (eff > 0)
			memcpy(f->bounds, bounds, eff * sizeof(double));
	}
	f->tab_size = 8;
	f->tab      = mcf_calloc(f->tab_size, sizeof(*f->tab));
	if (nlabels == 0) /* the one series exists from the start */
		(void) series_new_locked(f, NULL, HASH_INIT);

	if (reg->nfams == reg->cap) {
		reg->cap = reg->cap == 0 ? 16 : reg->cap * 2;
		reg->fams
		    = mcf_realloc(reg->fams, reg->cap * sizeof(*reg->fams));
	}
	reg->fams[reg->nfams++] = f;
	unlock(&reg->mtx);
	*out = f;
	return MCF_OK;
}

int
mcf_metrics_counter_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names, mcf_metrics_family **out)
{
	return family_register(
	    reg, MT_COUNTER, name, help, label_names, NULL, 0, out);
}

int
mcf_metrics_gauge_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names, mcf_metrics_family **out)
{
	return family_register(
	    reg, MT_GAUGE, name, help, label_names, NULL, 0, out);
}

int
mcf_metrics_histogram_register(mcf_metrics *reg, const char *name,
    const char *help, const char *const *label_names, const double *bounds,
    size_t nbounds, mcf_metrics_family **out)
{
	return family_register(
	    reg, MT_HISTOGRAM, name, help, label_names, bounds, nbounds, out);
}

/* ---- series ---- */

static void
series_grow_locked(mcf_metrics_family *f)
{
	size_t               size = f->tab_size * 2;
	mcf_metrics_series **tab  = mcf_calloc(size, sizeof(*tab));
	for (mcf_metrics_series *s = f->head; s != NULL; s = s->next) {
		size_t i = (size_t) (s->hash & (size - 1));
		s->chain = tab[i];
		tab[i]   = s;
	}
	free(f->tab);
	f->tab      = tab;
	f->tab_size = size;
}

/* Builds the escaped label text `n1="v1",n2="v2"` (new). */
static char *
label_text(const char *const *names, const char *const *values, size_t n)
{
	sbuf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sb_putc(&b, ',');
		sb_puts(&b, names[i]);
		sb_putn(&b, "=\"", 2);
		sb_put_label_value(&b, values[i]);
		sb_putc(&b, '"');
	}
	return sb_take(&b);
}

static mcf_metrics_series *
series_new_locked(
    mcf_metrics_family *f, const char *const *values, uint64_t hash)
{
	mcf_metrics_series *s = mcf_calloc(1, sizeof(*s));

	s->fam    = f;
	s->hash   = hash;
	s->values = mcf_calloc(f->nlabels, sizeof(char *));
	for (size_t i = 0; i < f->nlabels; i++)
		s->values[i] = mcf_strdup(values[i]);
	s->ltext = label_text((const char *const *) f->labels,
	    (const char *const *) s->values, f->nlabels);
	atomic_init(&s->val, dbits(0.0));
	if (f->type == MT_HISTOGRAM) {
		s->bk = mcf_calloc(f->nbounds + 1, sizeof(*s->bk));
		for (size_t i = 0; i <= f->nbounds; i++)
			atomic_init(&s->bk[i], 0);
	}

	if (f->nseries >= f->tab_size)
		series_grow_locked(f);
	size_t i  = (size_t) (hash & (f->tab_size - 1));
	s->chain  = f->tab[i];
	f->tab[i] = s;
	if (f->tail != NULL)
		f->tail->next = s;
	else
		f->head = s;
	f->tail = s;
	f->nseries++;
	return s;
}

int
mcf_metrics_series_get(mcf_metrics_family *fam,
    const char *const *label_values, mcf_metrics_series **out)
{
	uint64_t            h = HASH_INIT;
	mcf_metrics_series *s;

	if (fam == NULL || out == NULL)
		return MCF_EINVAL;
	if (fam->nlabels > 0 && label_values == NULL)
		return MCF_EINVAL;
	for (size_t i = 0; i < fam->nlabels; i++) {
		if (label_values[i] == NULL)
			return MCF_EINVAL;
		h = hash_bytes(h, label_values[i]);
	}

	lock(&fam->mtx);
	for (s = fam->tab[h & (fam->tab_size - 1)]; s != NULL; s = s->chain) {
		size_t i;
		if (s->hash != h)
			continue;
		for (i = 0; i < fam->nlabels; i++)
			if (strcmp(s->values[i], label_values[i]) != 0)
				break;
		if (i == fam->nlabels)
			break;
	}
	if (s == NULL) {
		/* Only new label values need checking; known ones passed. */
		for (size_t i = 0; i < fam->nlabels; i++) {
			if (!utf8_valid(label_values[i])) {
				unlock(&fam->mtx);
				return MCF_EINVAL;
			}
		}
		s = series_new_locked(fam, label_values, h);
	}
	unlock(&fam->mtx);
	*out = s;
	return MCF_OK;
}

/* ---- updates ---- */

static void
check_type(const mcf_metrics_series *s, enum mtype want)
{
	if (s == NULL || s->fam->type != want)
		mcf_panic("metrics: update of a series of another type");
}

void
mcf_metrics_counter_inc(mcf_metrics_series *s)
{
	check_type(s, MT_COUNTER);
	atomic_add_double(&s->val, 1.0);
}

int
mcf_metrics_counter_add(mcf_metrics_series *s, double v)
{
	check_type(s, MT_COUNTER);
	if (isnan(v) || v < 0)
		return MCF_EINVAL;
	atomic_add_double(&s->val, v);
	return MCF_OK;
}

void
mcf_metrics_gauge_set(mcf_metrics_series *s, double v)
{
	check_type(s, MT_GAUGE);
	atomic_store_explicit(&s->val, dbits(v), memory_order_relaxed);
}

void
mcf_metrics_gauge_add(mcf_metrics_series *s, double v)
{
	check_type(s, MT_GAUGE);
	atomic_add_double(&s->val, v);
}

void
mcf_metrics_histogram_observe(mcf_metrics_series *s, double v)
{
	const mcf_metrics_family *f;
	size_t                    lo = 0, hi;

	check_type(s, MT_HISTOGRAM);
	f  = s->fam;
	hi = f->nbounds;
	if (isnan(v)) {
		lo = f->nbounds;
	} else {
		/* First bound >= v; nbounds (the +Inf bucket) if none. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (f->bounds[mid] >= v)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	atomic_fetch_add_explicit(&s->bk[lo], 1, memory_order_relaxed);
	atomic_add_double(&s->val, v);
}

double
mcf_metrics_series_value(const mcf_metrics_series *s)
{
	if (s == NULL)
		return 0;
	return bitsd(atomic_load_explicit(
	    (_Atomic uint64_t *) &s->val, memory_order_relaxed));
}

/* ---- collectors ---- */

int
mcf_metrics_add_collector(
    mcf_metrics *reg, mcf_metrics_collect_fn fn, void *arg)
{
	collector **pp;

	if (reg == NULL || fn == NULL)
		return MCF_EINVAL;
	lock(&reg->mtx);
	for (pp = &reg->colls; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->fn == fn && (*pp)->arg == arg && !(*pp)->removed) {
			unlock(&reg->mtx);
			return MCF_EEXIST;
		}
	}
	collector *c = mcf_calloc(1, sizeof(*c));
	c->fn        = fn;
	c->arg       = arg;
	*pp          = c;
	unlock(&reg->mtx);
	return MCF_OK;
}

int
mcf_metrics_remove_collector(
    mcf_metrics *reg, mcf_metrics_collect_fn fn, void *arg)
{
	collector *c;

	if (reg == NULL || fn == NULL)
		return MCF_EINVAL;
	lock(&reg->mtx);
	for (c = reg->colls; c != NULL; c = c->next)
		if (c->fn == fn && c->arg == arg && !c->removed)
			break;
	if (c == NULL) {
		unlock(&reg->mtx);
		return MCF_ENOENT;
	}
	c->removed = true;
	while (c->busy > 0)
		if (pthread_cond_wait(&reg->cv, &reg->mtx) != 0)
			mcf_panic("metrics: pthread_cond_wait failed");
	for (collector **pp = &reg->colls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	unlock(&reg->mtx);
	free(c);
	return MCF_OK;
}

/* ---- the writer ---- */

static void
writer_init(mcf_metrics_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->tab_size = 64;
	w->tab      = mcf_calloc(w->tab_size, sizeof(*w->tab));
}

static void
writer_fini(mcf_metrics_writer *w)
{
	for (size_t i = 0; i < w->tab_size; i++) {
		rgroup *g = w->tab[i];
		while (g != NULL) {
			rgroup *next = g->chain;
			for (size_t j = 0; j < g->n; j++) {
				free(g->v[j].key);
				free(g->v[j].text);
			}
			free(g->v);
			free(g->name);
			free(g->help);
			free(g);
			g = next;
		}
	}
	free(w->tab);
	w->tab = NULL;
}

static rgroup *
writer_find(mcf_metrics_writer *w, const char *name, uint64_t h)
{
	for (rgroup *g = w->tab[h & (w->tab_size - 1)]; g != NULL;
	     g         = g->chain)
                if (g->hash == h && strcmp(g->name, name) == 0)
                        return g;
	return NULL;
}

static void
writer_grow(mcf_metrics_writer *w)
{
	size_t   size = w->tab_size * 2;
	rgroup **tab  = mcf_calloc(size, sizeof(*tab));
	for (size_t i = 0; i < w->tab_size; i++) {
		rgroup *g = w->tab[i];
		while (g != NULL) {
			rgroup *next = g->chain;
			size_t  j    = (size_t) (g->hash & (size - 1));
			g->chain     = tab[j];
			tab[j]       = g;
			g            = next;
		}
	}
	free(w->tab);
	w->tab      = tab;
	w->tab_size = size;
}

/* Finds or creates the group for family `name`; NULL when `name` is in
 * use with another type or clashes with a histogram's series names. */
static rgroup *
writer_group(
    mcf_metrics_writer *w, const char *name, const char *help, enum mtype type)
{
	uint64_t h = hash_bytes(HASH_INIT, name);
	rgroup  *g = writer_find(w, name, h);
	char    *base;

	if (g != NULL) {
		if (g->type != type)
			return NULL;
		if (g->help == NULL && help != NULL && *help != '\0')
			g->help = mcf_strdup(help);
		return g;
	}
	if ((base = hist_base(name)) != NULL) {
		rgroup *b = writer_find(w, base, hash_bytes(HASH_INIT, base));
		free(base);
		if (b != NULL && b->type == MT_HISTOGRAM)
			return NULL;
	}
	if (type == MT_HISTOGRAM) {
		static const char *const suf[]
		    = { "_bucket", "_sum", "_count" };
		for (size_t i = 0; i < 3; i++) {
			char *n = mcf_asprintf("%s%s", name, suf[i]);
			bool  clash
			    = writer_find(w, n, hash_bytes(HASH_INIT, n))
			    != NULL;
			free(n);
			if (clash)
				return NULL;
		}
	}

	if (w->ngroups >= w->tab_size)
		writer_grow(w);
	g         = mcf_calloc(1, sizeof(*g));
	g->name   = mcf_strdup(name);
	g->help   = help != NULL && *help != '\0' ? mcf_strdup(help) : NULL;
	g->type   = type;
	g->hash   = h;
	size_t i  = (size_t) (h & (w->tab_size - 1));
	g->chain  = w->tab[i];
	w->tab[i] = g;
	w->ngroups++;
	return g;
}

/* Adds a sample; steals `key` and `text`. */
static void
group_add(mcf_metrics_writer *w, rgroup *g, char *key, char *text)
{
	if (g->n == g->cap) {
		g->cap = g->cap == 0 ? 8 : g->cap * 2;
		g->v   = mcf_realloc(g->v, g->cap * sizeof(*g->v));
	}
	g->v[g->n].key  = key;
	g->v[g->n].text = text;
	g->v[g->n].seq  = w->seq++;
	g->n++;
}

/* One `name{labels} value` line. */
static void
sb_put_line(sbuf *b, const char *name, const char *suffix, const char *key,
    const char *extra, double v)
{
	bool braces = *key != '\0' || extra != NULL;
	sb_puts(b, name);
	sb_puts(b, suffix);
	if (braces) {
		sb_putc(b, '{');
		sb_puts(b, key);
		if (extra != NULL) {
			if (*key != '\0')
				sb_putc(b, ',');
			sb_puts(b, extra);
		}
		sb_putc(b, '}');
	}
	sb_putc(b, ' ');
	sb_put_double(b, v);
	sb_putc(b, '\n');
}

/* Emits a counter or gauge sample; `key` is the escaped label text. */
static int
emit_scalar(mcf_metrics_writer *w, enum mtype type, const char *name,
    const char *help, const char *key, double v)
{
	sbuf    b = { 0 };
	rgroup *g = writer_group(w, name, help, type);
	if (g == NULL)
		return MCF_EINVAL;
	sb_put_line(&b, name, "", key, NULL, v);
	group_add(w, g, mcf_strdup(key), sb_take(&b));
	return MCF_OK;
}

/* Emits a histogram sample from cumulative bucket counts. */
static int
emit_histogram(mcf_metrics_writer *w, const char *name, const char *help,
    const char *key, const double *bounds, const uint64_t *cum, size_t nbounds,
    uint64_t count, double sum)
{
	sbuf    b  = { 0 };
	sbuf    le = { 0 };
	rgroup *g  = writer_group(w, name, help, MT_HISTOGRAM);
	if (g == NULL)
		return MCF_EINVAL;
	for (size_t i = 0; i <= nbounds; i++) {
		le.len = 0;
		sb_puts(&le, "le=\"");
		if (i < nbounds)
			sb_put_double(&le, bounds[i]);
		else
			sb_puts(&le, "+Inf");
		sb_putc(&le, '"');
		/* Bucket counts are integers: print them exactly. */
		sb_puts(&b, name);
		sb_puts(&b, "_bucket{");
		sb_puts(&b, key);
		if (*key != '\0')
			sb_putc(&b, ',');
		sb_puts(&b, le.p);
		sb_putn(&b, "} ", 2);
		sb_put_u64(&b, i < nbounds ? cum[i] : count);
		sb_putc(&b, '\n');
	}
	free(le.p);
	sb_put_line(&b, name, "_sum", key, NULL, sum);
	sb_puts(&b, name);
	sb_puts(&b, "_count");
	if (*key != '\0') {
		sb_putc(&b, '{');
		sb_puts(&b, key);
		sb_putc(&b, '}');
	}
	sb_putc(&b, ' ');
	sb_put_u64(&b, count);
	sb_putc(&b, '\n');
	group_add(w, g, mcf_strdup(key), sb_take(&b));
	return MCF_OK;
}

/* Checks a collector's name/value pairs and builds their label text
 * (new) into *key; `hist` forbids "le". */
static int
pairs_text(const char *const *labels, bool hist, char **key)
{
	size_t n = strv_len(labels);
	sbuf   b = { 0 };

	if (n % 2 != 0)
		return MCF_EINVAL;
	for (size_t i = 0; i < n; i += 2) {
		if (!mcf_metrics_label_name_valid(labels[i])
		    || (hist && strcmp(labels[i], "le") == 0)
		    || !utf8_valid(labels[i + 1]))
			goto bad;
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(labels[i], labels[j]) == 0)
				goto bad;
		if (i > 0)
			sb_putc(&b, ',');
		sb_puts(&b, labels[i]);
		sb_putn(&b, "=\"", 2);
		sb_put_label_value(&b, labels[i + 1]);
		sb_putc(&b, '"');
	}
	*key = sb_take(&b);
	return MCF_OK;
bad:
	free(b.p);
	return MCF_EINVAL;
}

static int
write_scalar(mcf_metrics_writer *w, enum mtype type, const char *name,
    const char *help, const char *const *labels, double value)
{
	char *key;
	int   rv;

	if (w == NULL || !mcf_metrics_name_valid(name))
		return MCF_EINVAL;
	if (type == MT_COUNTER && (isnan(value) || value < 0))
		return MCF_EINVAL;
	if ((rv = pairs_text(labels, false, &key)) != MCF_OK)
		return rv;
	rv = emit_scalar(w, type, name, help, key, value);
	free(key);
	return rv;
}

int
mcf_metrics_write_counter(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, double value)
{
	return write_scalar(w, MT_COUNTER, name, help, labels, value);
}

int
mcf_metrics_write_gauge(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, double value)
{
	return write_scalar(w, MT_GAUGE, name, help, labels, value);
}

int
mcf_metrics_write_histogram(mcf_metrics_writer *w, const char *name,
    const char *help, const char *const *labels, const double *bounds,
    const uint64_t *buckets, size_t nbounds, uint64_t count, double sum)
{
	size_t eff;
	char  *key;
	int    rv;

	if (w == NULL || !mcf_metrics_name_valid(name)
	    || !bounds_valid(bounds, nbounds, &eff)
	    || (eff > 0 && buckets == NULL))
		return MCF_EINVAL;
	for (size_t i = 0; i < eff; i++)
		if (i > 0 && buckets[i] < buckets[i - 1])
			return MCF_EINVAL;
	if (eff > 0 && count < buckets[eff - 1])
		return MCF_EINVAL;
	if ((rv = pairs_text(labels, true, &key)) != MCF_OK)
		return rv;
	rv = emit_histogram(
	    w, name, help, key, bounds, buckets, eff, count, sum);
	free(key);
	return rv;
}

/* ---- rendering ---- */

/* Emits every series of every registered family into `w`. */
static void
render_families(mcf_metrics *reg, mcf_metrics_writer *w)
{
	mcf_metrics_family **fams;
	size_t               nfams;

	/* Families are never freed while the registry lives, so a snapshot
	 * of the pointers is enough; the same holds for series. */
	lock(&reg->mtx);
	nfams = reg->nfams;
	fams  = mcf_calloc(nfams, sizeof(*fams));
	if (nfams > 0)
		memcpy(fams, reg->fams, nfams * sizeof(*fams));
	unlock(&reg->mtx);

	for (size_t i = 0; i < nfams; i++) {
		mcf_metrics_family  *f = fams[i];
		mcf_metrics_series **ss;
		size_t               n   = 0;
		uint64_t            *cum = NULL;

		lock(&f->mtx);
		ss = mcf_calloc(f->nseries, sizeof(*ss));
		for (mcf_metrics_series *s = f->head; s != NULL; s = s->next)
			ss[n++] = s;
		unlock(&f->mtx);
		if (f->type == MT_HISTOGRAM)
			cum = mcf_calloc(f->nbounds + 1, sizeof(*cum));
		for (size_t k = 0; k < n; k++) {
			mcf_metrics_series *s   = ss[k];
			double              sum = mcf_metrics_series_value(s);
			if (f->type != MT_HISTOGRAM) {
				(void) emit_scalar(w, f->type, f->name,
				    f->help, s->ltext, sum);
				continue;
			}
			uint64_t total = 0;
			for (size_t j = 0; j <= f->nbounds; j++) {
				total += atomic_load_explicit(
				    &s->bk[j], memory_order_relaxed);
				cum[j] = total;
			}
			(void) emit_histogram(w, f->name, f->help, s->ltext,
			    f->bounds, cum, f->nbounds, total, sum);
		}
		free(cum);
		free(ss);
	}
	free(fams);
}

/* Runs every collector once with no lock held (see the file comment). */
static void
render_collectors(mcf_metrics *reg, mcf_metrics_writer *w)
{
	collector *c;

	lock(&reg->mtx);
	c = reg->colls;
	while (c != NULL && c->removed)
		c = c->next;
	if (c != NULL)
		c->busy++;
	while (c != NULL) {
		unlock(&reg->mtx);
		c->fn(w, c->arg);
		lock(&reg->mtx);
		c->busy--;
		if (c->busy == 0 && c->removed)
			pthread_cond_broadcast(&reg->cv);
		/* `c` is still linked: its remover waits for busy == 0 and
		 * needs the mutex we hold to unlink it. */
		c = c->next;
		while (c != NULL && c->removed)
			c = c->next;
		if (c != NULL)
			c->busy++;
	}
	unlock(&reg->mtx);
}

static int
group_cmp(const void *a, const void *b)
{
	const rgroup *ga = *(const rgroup *const *) a;
	const rgroup *gb = *(const rgroup *const *) b;
	return strcmp(ga->name, gb->name);
}

static int
sample_cmp(const void *a, const void *b)
{
	const rsample *sa = a;
	const rsample *sb = b;
	int            c  = strcmp(sa->key, sb->key);
	if (c != 0)
		return c;
	return sa->seq < sb->seq ? -1 : sa->seq > sb->seq;
}

int
mcf_metrics_render(mcf_metrics *reg, char **out, size_t *len)
{
	mcf_metrics_writer w;
	rgroup           **groups;
	size_t             ng = 0;
	sbuf               b  = { 0 };

	if (reg == NULL || out == NULL)
		return MCF_EINVAL;
	writer_init(&w);
	render_families(reg, &w);
	render_collectors(reg, &w);

	groups = mcf_calloc(w.ngroups, sizeof(*groups));
	for (size_t i = 0; i < w.tab_size; i++)
		for (rgroup *g = w.tab[i]; g != NULL; g = g->chain)
			groups[ng++] = g;
	qsort(groups, ng, sizeof(*groups), group_cmp);

	for (size_t i = 0; i < ng; i++) {
		rgroup *g = groups[i];
		if (g->n == 0)
			continue;
		if (g->help != NULL) {
			sb_puts(&b, "# HELP ");
			sb_puts(&b, g->name);
			sb_putc(&b, ' ');
			sb_put_help(&b, g->help);
			sb_putc(&b, '\n');
		}
		sb_puts(&b, "# TYPE ");
		sb_puts(&b, g->name);
		sb_putc(&b, ' ');
		sb_puts(&b, type_name(g->type));
		sb_putc(&b, '\n');
		qsort(g->v, g->n, sizeof(*g->v), sample_cmp);
		for (size_t j = 0; j < g->n; j++) {
			if (j > 0 && strcmp(g->v[j].key, g->v[j - 1].key) == 0)
				continue; /* same labels: keep the first */
			sb_puts(&b, g->v[j].text);
		}
	}
	free(groups);
	writer_fini(&w);

	if (len != NULL)
		*len = b.len;
	*out = sb_take(&b);
	return MCF_OK;
}

int
mcf_metrics_serve(
    const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	mcf_metrics *reg = arg != NULL ? arg : mcf_metrics_default();
	char        *text = NULL;
	size_t       len  = 0;
	if (mcf_metrics_render(reg, &text, &len) != MCF_OK) {
		mcf_httpserver_resp_status(resp, 500);
		mcf_httpserver_resp_printf(resp, "cannot render the metrics\n");
		return 0;
	}
	mcf_httpserver_resp_content_type(resp, MCF_METRICS_CONTENT_TYPE);
	mcf_httpserver_resp_body_steal(resp, text, len);
	return 0;
}
