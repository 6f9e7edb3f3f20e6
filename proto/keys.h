/*
 * keys.h — the HMAC key ring: a current and an optional previous key, read
 * from a file (a Kubernetes Secret mounted as a file) and re-read when it
 * changes, so keys rotate without a restart.
 *
 * Key file format (documented in proto/README.md as well):
 *
 *   - Text, one key per line: the first key line is the current key (the
 *     one frames are signed with), an optional second key line is the
 *     previous key (still accepted when verifying).  More than two key
 *     lines is an error.
 *   - Blank lines and lines starting with '#' are ignored; spaces, tabs
 *     and a '\r' around a line are trimmed.
 *   - A line "hex:<hex digits>" holds the key in hex, "base64:<base64>" in
 *     standard or URL-safe base64; any other line is the key itself, its
 *     bytes exactly as written (so `openssl rand -hex 32` output, used
 *     as it is, is a 64-byte key).
 *   - Every key is at least MCF_PROTO_KEY_MIN (32) and at most
 *     MCF_PROTO_KEY_MAX (256) bytes once decoded.
 *   - Optionally, a second file (`previous_path`, e.g. another key of the
 *     same Secret) holds the previous key, in the same format with at most
 *     one key.  A missing or empty previous file means "no previous key".
 *     Giving a previous key in both places is an error.
 *
 * Rotation without rejected frames: (1) add the new key as previous
 * everywhere ("old\nnew"); (2) once every pod has re-read the file, make it
 * current ("new\nold"); (3) later drop the old key ("new").  Between
 * steps, wait for the kubelet to update the mounted Secret in every pod
 * (up to its sync period, about a minute) plus the check interval.
 *
 * Reloading: mcf_proto_keys_get() stats the file(s) at most every
 * `check_interval_ms` and re-reads them when the device, inode, size or
 * modification time changed (a Secret update swaps a symlink, which
 * changes the inode).  A file that fails to load keeps the keys in use and
 * logs one error per distinct bad file version (ID "PROTO-KEYS-RELOAD");
 * it is tried again at every check until it loads.
 *
 * Thread model: every function except create and destroy may be called
 * from any thread; the ring's mutex `mtx` is held while checking and
 * re-reading the (small) files.
 *
 * Ownership: paths are copied at creation.  mcf_proto_keyset values are
 * copies owned by the caller, who should clear them with
 * mcf_proto_keyset_clear() when done so key bytes do not linger.
 */
#ifndef MCF_PROTO_KEYS_H
#define MCF_PROTO_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MCF_PROTO_KEY_MIN 32
#define MCF_PROTO_KEY_MAX 256

/* One key: a plain value type. */
typedef struct mcf_proto_key {
	uint8_t bytes[MCF_PROTO_KEY_MAX];
	size_t  len; /* 0: no key */
	uint8_t id;  /* mcf_proto_keys_id() of the key */
} mcf_proto_key;

/* The keys in use at one moment: a plain value type. */
typedef struct mcf_proto_keyset {
	mcf_proto_key current;    /* signs; always present in a loaded set */
	mcf_proto_key previous;   /* len 0 when there is none */
	uint64_t      generation; /* bumped at every successful (re)load */
} mcf_proto_keyset;

/* The one-byte key id carried in frame headers: the first byte of
 * SHA-256("mcfleet-proto-key-id" || key).  A hint only: receivers try the
 * key whose id matches first, then the other. */
uint8_t mcf_proto_keys_id(const void *key, size_t len);

/* Fills `ks` from raw key bytes (borrowed, copied): `cur` is required,
 * `prev` may be NULL (prev_len 0).  MCF_EINVAL, with a message in `ei`,
 * for a key shorter than MCF_PROTO_KEY_MIN or longer than
 * MCF_PROTO_KEY_MAX; `ks` is cleared then.  For tests and for callers that
 * hold keys some other way. */
int mcf_proto_keyset_init(mcf_proto_keyset *ks, const void *cur,
    size_t cur_len, const void *prev, size_t prev_len, mcf_errinfo *ei);

/* Wipes the key bytes of `ks` (OPENSSL_cleanse). */
void mcf_proto_keyset_clear(mcf_proto_keyset *ks);

typedef struct mcf_proto_keys mcf_proto_keys;

/* Options for mcf_proto_keys_create(): a plain value type, fill with
 * mcf_proto_keys_opts_init() first. */
typedef struct mcf_proto_keys_opts {
	const char *path;          /* key file; required; borrowed, copied */
	const char *previous_path; /* optional previous-key file, or NULL */
	/* Stat the files at most this often; default 1000.  0 checks at
	 * every mcf_proto_keys_get(); < 0 never checks (reload only with
	 * mcf_proto_keys_reload()). */
	int64_t check_interval_ms;
} mcf_proto_keys_opts;

void mcf_proto_keys_opts_init(mcf_proto_keys_opts *o);

/* Parses key file text (the format above) into `ks`.  `name` names the
 * source in error messages.  `allow_two` false (a previous-key file)
 * accepts at most one key; with `allow_empty` an input without keys gives
 * a keyset with no current key instead of an error.  Errors: MCF_EINVAL
 * with a message naming `name`, the line and what is wrong. */
int mcf_proto_keys_parse(const char *name, const char *text, size_t len,
    bool allow_two, bool allow_empty, mcf_proto_keyset *ks, mcf_errinfo *ei);

/* Loads the key file(s) now.  Errors (MCF_EINVAL, or MCF_ENOENT/MCF_EPERM/
 * MCF_ESYS from the file system) come with a message naming the file and
 * what is wrong; *out is untouched then.  On success *out is new
 * (mcf_proto_keys_destroy). */
int mcf_proto_keys_create(
    mcf_proto_keys **out, const mcf_proto_keys_opts *opts, mcf_errinfo *ei);

/* A ring holding fixed keys (copied from `ks`, which must have a current
 * key), never reloaded: for tests and for embedding processes that get
 * keys elsewhere.  *out is new. */
int mcf_proto_keys_create_static(
    mcf_proto_keys **out, const mcf_proto_keyset *ks);

/* Wipes and frees the ring; accepts NULL.  No other thread may use it. */
void mcf_proto_keys_destroy(mcf_proto_keys *k);

/* Copies the keys in use to `*out`, first re-reading the file(s) if the
 * check interval has passed and they changed.  Never fails: after a failed
 * reload the previous keys stay in use.  Any thread. */
void mcf_proto_keys_get(mcf_proto_keys *k, mcf_proto_keyset *out);

/* Re-reads the file(s) now, whether or not they changed.  On failure the
 * keys in use stay and the error (naming the file) is returned.  MCF_OK
 * and nothing else on a static ring.  Any thread. */
int mcf_proto_keys_reload(mcf_proto_keys *k, mcf_errinfo *ei);

/* The generation of the keys in use (1 after creation, +1 per successful
 * reload that changed them). */
uint64_t mcf_proto_keys_generation(mcf_proto_keys *k);

#endif /* MCF_PROTO_KEYS_H */
