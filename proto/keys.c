/*
 * keys.c — the HMAC key ring (format and reload rules in keys.h).
 *
 * The ring keeps the keyset in use together with the identity of the file
 * versions it came from: device, inode, size and modification time as
 * fstat(2) reported them on the descriptor that was read, so the stamp
 * always describes the bytes actually parsed even if the file is replaced
 * between stat and read.  A check stats the paths (following symlinks, as
 * a mounted Secret is a symlink farm) and reloads when either stamp
 * differs.  A version that failed to load is remembered, so its error is
 * logged once, not at every check; it is still retried at every check in
 * case the writer was not finished.
 *
 * Key bytes are wiped with OPENSSL_cleanse wherever a copy dies.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "alloc.h"
#include "base64.h"
#include "log.h"

/* A key file larger than this is certainly not a key file. */
#define KEY_FILE_MAX (64 * 1024)

typedef struct file_stamp {
	bool            exists;
	dev_t           dev;
	ino_t           ino;
	off_t           size;
	struct timespec mtim;
} file_stamp;

struct mcf_proto_keys {
	pthread_mutex_t  mtx;
	char            *path;      /* owned; NULL for a static ring */
	char            *prev_path; /* owned; may be NULL */
	int64_t          check_interval_ms;
	int64_t          next_check_ms; /* monotonic */
	file_stamp       stamp;         /* of the keys in use */
	file_stamp       prev_stamp;
	bool             have_bad; /* bad_* hold a version that failed */
	file_stamp       bad_stamp;
	file_stamp       bad_prev_stamp;
	mcf_proto_keyset ks; /* in use */
};

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("proto keys: pthread_mutex_lock failed");
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("proto keys: pthread_mutex_unlock failed");
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint8_t
mcf_proto_keys_id(const void *key, size_t len)
{
	static const char ctx[] = "mcfleet-proto-key-id";
	unsigned char     md[EVP_MAX_MD_SIZE];
	unsigned int      mdlen = 0;
	EVP_MD_CTX       *c     = EVP_MD_CTX_new();
	if (c == NULL)
		mcf_panic("proto keys: EVP_MD_CTX_new failed");
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1
	    || EVP_DigestUpdate(c, ctx, sizeof(ctx) - 1) != 1
	    || EVP_DigestUpdate(c, key, len) != 1
	    || EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen < 1)
		mcf_panic("proto keys: SHA-256 failed");
	EVP_MD_CTX_free(c);
	uint8_t id = md[0];
	OPENSSL_cleanse(md, sizeof(md));
	return id;
}

static void
key_set(mcf_proto_key *k, const void *bytes, size_t len)
{
	memcpy(k->bytes, bytes, len);
	k->len = len;
	k->id  = mcf_proto_keys_id(bytes, len);
}

void
mcf_proto_keyset_clear(mcf_proto_keyset *ks)
{
	OPENSSL_cleanse(ks, sizeof(*ks));
}

static int
check_len(const char *what, size_t len, mcf_errinfo *ei)
{
	if (len < MCF_PROTO_KEY_MIN)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "%s is %zu bytes long; at least %d bytes are required",
		    what, len, MCF_PROTO_KEY_MIN);
	if (len > MCF_PROTO_KEY_MAX)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "%s is %zu bytes long; at most %d bytes are allowed", what,
		    len, MCF_PROTO_KEY_MAX);
	return MCF_OK;
}

int
mcf_proto_keyset_init(mcf_proto_keyset *ks, const void *cur, size_t cur_len,
    const void *prev, size_t prev_len, mcf_errinfo *ei)
{
	int rv;
	mcf_proto_keyset_clear(ks);
	if (cur == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "no current key given");
	if ((rv = check_len("the current key", cur_len, ei)) != MCF_OK)
		return rv;
	if (prev != NULL && prev_len > 0
	    && (rv = check_len("the previous key", prev_len, ei)) != MCF_OK)
		return rv;
	key_set(&ks->current, cur, cur_len);
	if (prev != NULL && prev_len > 0)
		key_set(&ks->previous, prev, prev_len);
	ks->generation = 1;
	return MCF_OK;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
line_len_error(const char *name, int lineno, size_t len, mcf_errinfo *ei)
{
	return mcf_errinfo_set(ei, MCF_EINVAL,
	    "key file %s: line %d: the key is %zu bytes long; keys are %d to "
	    "%d bytes",
	    name, lineno, len, MCF_PROTO_KEY_MIN, MCF_PROTO_KEY_MAX);
}

/* Decodes one key line (trimmed, not empty) into `k`. */
static int
parse_line(const char *name, int lineno, const char *s, size_t n,
    mcf_proto_key *k, mcf_errinfo *ei)
{
	if (n >= 4 && memcmp(s, "hex:", 4) == 0) {
		s += 4;
		n -= 4;
		if (n % 2 != 0)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "key file %s: line %d: hex key has an odd number "
			    "of digits",
			    name, lineno);
		if (n / 2 < MCF_PROTO_KEY_MIN || n / 2 > MCF_PROTO_KEY_MAX)
			return line_len_error(name, lineno, n / 2, ei);
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval((unsigned char) s[2 * i]);
			int lo = hexval((unsigned char) s[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				OPENSSL_cleanse(k, sizeof(*k));
				return mcf_errinfo_set(ei, MCF_EINVAL,
				    "key file %s: line %d: hex key has a "
				    "character that is not a hex digit",
				    name, lineno);
			}
			k->bytes[i] = (uint8_t) (hi << 4 | lo);
		}
		k->len = n / 2;
		k->id  = mcf_proto_keys_id(k->bytes, k->len);
		return MCF_OK;
	}
	if (n >= 7 && memcmp(s, "base64:", 7) == 0) {
		unsigned char *buf = NULL;
		size_t         len = 0;
		if (!mcf_base64_decode(s + 7, n - 7, &buf, &len))
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "key file %s: line %d: invalid base64", name,
			    lineno);
		int rv = MCF_OK;
		if (len < MCF_PROTO_KEY_MIN || len > MCF_PROTO_KEY_MAX)
			rv = line_len_error(name, lineno, len, ei);
		else
			key_set(k, buf, len);
		OPENSSL_cleanse(buf, len);
		free(buf);
		return rv;
	}
	if (n < MCF_PROTO_KEY_MIN || n > MCF_PROTO_KEY_MAX)
		return line_len_error(name, lineno, n, ei);
	key_set(k, s, n);
	return MCF_OK;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int
mcf_proto_keys_parse(const char *name, const char *text, size_t len,
    bool allow_two, bool allow_empty, mcf_proto_keyset *ks, mcf_errinfo *ei)
{
	mcf_proto_key keys[2];
	int           nkeys  = 0;
	int           lineno = 0;
	size_t        pos    = 0;
	int           rv     = MCF_OK;

	memset(keys, 0, sizeof(keys));
	mcf_proto_keyset_clear(ks);
	while (pos < len) {
		const char *line = text + pos;
		const char *nl   = memchr(line, '\n', len - pos);
		size_t      n = nl != NULL ? (size_t) (nl - line) : len - pos;
		pos += n + (nl != NULL ? 1 : 0);
		lineno++;
		while (n > 0 && is_space(line[0])) {
			line++;
			n--;
		}
		while (n > 0 && is_space(line[n - 1]))
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		if (nkeys == (allow_two ? 2 : 1)) {
			rv = mcf_errinfo_set(ei, MCF_EINVAL,
			    "key file %s: line %d: more than %d key%s; the "
			    "file holds %s",
			    name, lineno, allow_two ? 2 : 1,
			    allow_two ? "s" : "",
			    allow_two ? "the current key and optionally the "
			                "previous key, one per line"
			              : "only the previous key");
			goto out;
		}
		rv = parse_line(name, lineno, line, n, &keys[nkeys], ei);
		if (rv != MCF_OK)
			goto out;
		nkeys++;
	}
	if (nkeys == 0 && !allow_empty) {
		rv = mcf_errinfo_set(ei, MCF_EINVAL,
		    "key file %s: holds no key (only blank or comment lines)",
		    name);
		goto out;
	}
	if (nkeys >= 1)
		ks->current = keys[0];
	if (nkeys == 2)
		ks->previous = keys[1];
	ks->generation = 1;
out:
	OPENSSL_cleanse(keys, sizeof(keys));
	return rv;
}

void
mcf_proto_keys_opts_init(mcf_proto_keys_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->check_interval_ms = 1000;
}

static void
stamp_from(file_stamp *st, const struct stat *sb)
{
	memset(st, 0, sizeof(*st));
	st->exists = true;
	st->dev    = sb->st_dev;
	st->ino    = sb->st_ino;
	st->size   = sb->st_size;
	st->mtim   = sb->st_mtim;
}

static bool
stamp_eq(const file_stamp *a, const file_stamp *b)
{
	if (a->exists != b->exists)
		return false;
	if (!a->exists)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size
	    && a->mtim.tv_sec == b->mtim.tv_sec
	    && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

/* Stats `path`; a missing file gives a stamp with exists false. */
static void
stamp_path(const char *path, file_stamp *st)
{
	struct stat sb;
	memset(st, 0, sizeof(*st));
	if (stat(path, &sb) == 0)
		stamp_from(st, &sb);
}

/* Reads a whole (small) file.  With `missing_ok`, a file that does not
 * exist gives MCF_OK, an empty buffer and a stamp with exists false.
 * *buf is new (free() after cleansing). */
static int
read_file(const char *path, bool missing_ok, char **buf, size_t *len,
    file_stamp *st, mcf_errinfo *ei)
{
	struct stat sb;
	int         fd;

	*buf = NULL;
	*len = 0;
	memset(st, 0, sizeof(*st));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (missing_ok && e == ENOENT)
			return MCF_OK;
		return mcf_errinfo_set(ei, mcf_err_from_errno(e),
		    "key file %s: cannot open: %s", path, strerror(e));
	}
	if (fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		return mcf_errinfo_set(ei, mcf_err_from_errno(e),
		    "key file %s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "key file %s: not a regular file", path);
	}
	if (sb.st_size > KEY_FILE_MAX) {
		close(fd);
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "key file %s: %lld bytes; a key file holds at most %d",
		    path, (long long) sb.st_size, KEY_FILE_MAX);
	}
	char  *b   = mcf_malloc(KEY_FILE_MAX + 1);
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, b + got, KEY_FILE_MAX + 1 - got);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			OPENSSL_cleanse(b, got);
			free(b);
			return mcf_errinfo_set(ei, mcf_err_from_errno(e),
			    "key file %s: cannot read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		got += (size_t) r;
		if (got > KEY_FILE_MAX) {
			close(fd);
			OPENSSL_cleanse(b, got);
			free(b);
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "key file %s: more than %d bytes; a key file "
			    "holds "
			    "at most %d",
			    path, KEY_FILE_MAX, KEY_FILE_MAX);
		}
	}
	close(fd);
	stamp_from(st, &sb);
	*buf = b;
	*len = got;
	return MCF_OK;
}

/* Reads and parses the file(s) of `k` into `ks` and the stamps. */
static int
load(const mcf_proto_keys *k, mcf_proto_keyset *ks, file_stamp *st,
    file_stamp *prev_st, mcf_errinfo *ei)
{
	char            *buf = NULL;
	size_t           len = 0;
	mcf_proto_keyset prev;
	int              rv;

	memset(prev_st, 0, sizeof(*prev_st));
	rv = read_file(k->path, false, &buf, &len, st, ei);
	if (rv != MCF_OK)
		return rv;
	rv = mcf_proto_keys_parse(k->path, buf, len, true, false, ks, ei);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rv != MCF_OK || k->prev_path == NULL)
		return rv;

	rv = read_file(k->prev_path, true, &buf, &len, prev_st, ei);
	if (rv != MCF_OK)
		goto fail;
	rv = mcf_proto_keys_parse(
	    k->prev_path, buf, len, false, true, &prev, ei);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rv != MCF_OK)
		goto fail;
	if (prev.current.len > 0) {
		if (ks->previous.len > 0) {
			mcf_proto_keyset_clear(&prev);
			rv = mcf_errinfo_set(ei, MCF_EINVAL,
			    "key file %s holds a previous key on its second "
			    "line and previous-key file %s holds one too; "
			    "give it in one place only",
			    k->path, k->prev_path);
			goto fail;
		}
		ks->previous = prev.current;
	}
	mcf_proto_keyset_clear(&prev);
	return MCF_OK;
fail:
	mcf_proto_keyset_clear(ks);
	return rv;
}

static bool
keyset_same(const mcf_proto_keyset *a, const mcf_proto_keyset *b)
{
	return a->current.len == b->current.len
	    && a->previous.len == b->previous.len
	    && CRYPTO_memcmp(
	           a->current.bytes, b->current.bytes, a->current.len)
	    == 0
	    && CRYPTO_memcmp(
	           a->previous.bytes, b->previous.bytes, a->previous.len)
	    == 0;
}

/* Reloads into the ring; the caller holds k->mtx. */
static int
reload_locked(mcf_proto_keys *k, bool log_failure, mcf_errinfo *ei)
{
	mcf_proto_keyset ks;
	file_stamp       st, prev_st;
	mcf_errinfo      local;
	int              rv;

	rv = load(k, &ks, &st, &prev_st, &local);
	if (rv != MCF_OK) {
		/* Stat again so the remembered bad version is comparable
		 * with later checks, which only stat. */
		file_stamp bst, bpst;
		stamp_path(k->path, &bst);
		if (k->prev_path != NULL)
			stamp_path(k->prev_path, &bpst);
		else
			memset(&bpst, 0, sizeof(bpst));
		bool seen = k->have_bad && stamp_eq(&bst, &k->bad_stamp)
		    && stamp_eq(&bpst, &k->bad_prev_stamp);
		if (log_failure && !seen)
			mcf_log_error("PROTO-KEYS-RELOAD",
			    "keeping the keys in use: %s", local.msg);
		k->have_bad       = true;
		k->bad_stamp      = bst;
		k->bad_prev_stamp = bpst;
		if (ei != NULL)
			*ei = local;
		return rv;
	}
	k->have_bad   = false;
	k->stamp      = st;
	k->prev_stamp = prev_st;
	if (!keyset_same(&ks, &k->ks)) {
		ks.generation = k->ks.generation + 1;
		mcf_proto_keyset_clear(&k->ks);
		k->ks = ks;
		if (log_failure)
			mcf_log_info("PROTO-KEYS-RELOADED",
			    "reloaded key file %s: key id %02x current, %s",
			    k->path, k->ks.current.id,
			    k->ks.previous.len > 0 ? "a previous key too"
			                           : "no previous key");
	}
	mcf_proto_keyset_clear(&ks);
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

static mcf_proto_keys *
keys_alloc(void)
{
	mcf_proto_keys *k = mcf_calloc(1, sizeof(*k));
	if (pthread_mutex_init(&k->mtx, NULL) != 0)
		mcf_panic("proto keys: pthread_mutex_init failed");
	return k;
}

int
mcf_proto_keys_create(
    mcf_proto_keys **out, const mcf_proto_keys_opts *opts, mcf_errinfo *ei)
{
	mcf_proto_keys *k;
	file_stamp      st, prev_st;
	int             rv;

	if (opts == NULL || opts->path == NULL || opts->path[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL, "no key file given");
	k       = keys_alloc();
	k->path = mcf_strdup(opts->path);
	k->prev_path
	    = opts->previous_path != NULL && opts->previous_path[0] != '\0'
	    ? mcf_strdup(opts->previous_path)
	    : NULL;
	k->check_interval_ms = opts->check_interval_ms;
	rv                   = load(k, &k->ks, &st, &prev_st, ei);
	if (rv != MCF_OK) {
		mcf_proto_keys_destroy(k);
		return rv;
	}
	k->stamp         = st;
	k->prev_stamp    = prev_st;
	k->ks.generation = 1;
	k->next_check_ms = mono_ms()
	    + (k->check_interval_ms > 0 ? k->check_interval_ms : 0);
	*out = k;
	return MCF_OK;
}

int
mcf_proto_keys_create_static(mcf_proto_keys **out, const mcf_proto_keyset *ks)
{
	if (ks == NULL || ks->current.len == 0)
		return MCF_EINVAL;
	mcf_proto_keys *k    = keys_alloc();
	k->ks                = *ks;
	k->ks.generation     = 1;
	k->check_interval_ms = -1;
	*out                 = k;
	return MCF_OK;
}

void
mcf_proto_keys_destroy(mcf_proto_keys *k)
{
	if (k == NULL)
		return;
	mcf_proto_keyset_clear(&k->ks);
	free(k->path);
	free(k->prev_path);
	pthread_mutex_destroy(&k->mtx);
	free(k);
}

/* Stats the files if due and reloads when they changed; holds k->mtx. */
static void
maybe_reload_locked(mcf_proto_keys *k)
{
	if (k->path == NULL || k->check_interval_ms < 0)
		return;
	int64_t now = mono_ms();
	if (k->check_interval_ms > 0 && now < k->next_check_ms)
		return;
	k->next_check_ms = now + k->check_interval_ms;

	file_stamp st, prev_st;
	stamp_path(k->path, &st);
	if (k->prev_path != NULL)
		stamp_path(k->prev_path, &prev_st);
	else
		memset(&prev_st, 0, sizeof(prev_st));
	if (stamp_eq(&st, &k->stamp) && stamp_eq(&prev_st, &k->prev_stamp))
		return;
	reload_locked(k, true, NULL);
}

void
mcf_proto_keys_get(mcf_proto_keys *k, mcf_proto_keyset *out)
{
	lock(&k->mtx);
	maybe_reload_locked(k);
	*out = k->ks;
	unlock(&k->mtx);
}

int
mcf_proto_keys_reload(mcf_proto_keys *k, mcf_errinfo *ei)
{
	int rv = MCF_OK;
	lock(&k->mtx);
	if (k->path != NULL) {
		rv = reload_locked(k, false, ei);
		if (k->check_interval_ms >= 0)
			k->next_check_ms = mono_ms() + k->check_interval_ms;
	}
	unlock(&k->mtx);
	if (rv == MCF_OK)
		mcf_errinfo_clear(ei);
	return rv;
}

uint64_t
mcf_proto_keys_generation(mcf_proto_keys *k)
{
	lock(&k->mtx);
	uint64_t g = k->ks.generation;
	unlock(&k->mtx);
	return g;
}
