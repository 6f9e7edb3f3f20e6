/*
 * err.h — the one error convention of mcfleet (STYLE.md §4).
 *
 * Every function that can fail returns an int holding a value of enum
 * mcf_err; 0 is success.  Foreign errors (errno, CURLcode, nng codes, HTTP
 * status, libyaml) are translated where they enter our code.  When a caller
 * needs details, the function takes an optional `mcf_errinfo *` out-parameter
 * that receives the code and a human-readable message; passing NULL is
 * always allowed.
 */
#ifndef MCF_COMMON_ERR_H
#define MCF_COMMON_ERR_H

#include <stddef.h>

enum mcf_err {
	MCF_OK = 0,
	MCF_ENOMEM,    /* out of memory (normally fatal, see alloc.h) */
	MCF_EINVAL,    /* invalid argument or malformed input */
	MCF_ENOENT,    /* not found (HTTP 404 NotFound) */
	MCF_EEXIST,    /* already exists (HTTP 409 AlreadyExists) */
	MCF_ECONFLICT, /* optimistic-concurrency conflict (409 Conflict) */
	MCF_EGONE,     /* resourceVersion expired (410 Expired): re-list */
	MCF_ETIMEDOUT, /* a deadline passed */
	MCF_EIO,       /* I/O or transport failure */
	MCF_EPROTO,    /* peer violated the protocol */
	MCF_ERANGE,    /* value out of range */
	MCF_EBUSY,     /* resource busy, try later */
	MCF_ECLOSED,   /* object closed or shutting down */
	MCF_EPERM,     /* not permitted (401/403) */
	MCF_EUNAVAIL,  /* service unavailable (503, connection refused) */
	MCF_ETOOBIG,   /* message or body over its size limit (413) */
	MCF_EAGAIN,    /* throttled; retry after a delay (429) */
	MCF_ECANCELED, /* operation canceled */
	MCF_EUNSUPP,   /* not supported (405, 415) */
	MCF_EINTERNAL, /* the other side failed (500) */
	MCF_EAUTH,     /* authentication failed (bad HMAC, bad key) */
	MCF_ESYS,      /* a system call failed; see errno in the detail */
	MCF_ERR_COUNT  /* number of codes; not an error */
};

/* Detail for a failed call.  `code` repeats the returned value; `msg` is a
 * NUL-terminated sentence without a trailing newline. */
typedef struct mcf_errinfo {
	int  code;
	char msg[512];
} mcf_errinfo;

/* Text for an error code ("not found"); never NULL, also for unknown
 * values. */
const char *mcf_strerror(int code);

/* Symbolic name of an error code ("MCF_ENOENT"); never NULL. */
const char *mcf_err_name(int code);

/* Fills `ei` (if not NULL) with `code` and a printf-formatted message and
 * returns `code`, so a failing path can `return mcf_errinfo_set(ei, ...)`. */
int mcf_errinfo_set(mcf_errinfo *ei, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears `ei` (if not NULL) to MCF_OK and an empty message. */
void mcf_errinfo_clear(mcf_errinfo *ei);

/* Translates an errno value into an mcf_err code. */
int mcf_err_from_errno(int errnum);

#endif /* MCF_COMMON_ERR_H */
