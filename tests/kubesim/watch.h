/*
 * watch.h — watch streams (KUBE_API.md §3.3).
 *
 * The hub observes the store and writes every event to the watches of its
 * plane and resource whose namespace and selectors match, applying the
 * selector-transition table (a modification that makes an object match is
 * ADDED, one that makes it stop matching is DELETED).  Each event is one
 * JSON line in one HTTP chunk, written while the store is consistent, so a
 * bookmark taken between events (RV = the plane counter) never runs ahead
 * of what the stream has carried.  A watch ends cleanly at its timeout,
 * when its plane is deleted, or when the client stops reading and its
 * queue passes the buffer limit (as real servers drop slow watchers).
 */
#ifndef KS_WATCH_H
#define KS_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "selector.h"
#include "sim.h"

enum ks_watch_start {
	KS_WATCH_FROM_RV, /* changes after `rv` only */
	KS_WATCH_INITIAL, /* synthetic ADDED for the current state first */
	KS_WATCH_LATEST,  /* changes from now on, no synthetic events */
};

typedef struct ks_watch_params {
	ks_plane           *plane;
	const ks_type      *type;
	const char         *ns;   /* NULL: every namespace (copied) */
	ks_labelsel        *lsel; /* stolen, may be NULL */
	ks_fieldsel        *fsel; /* stolen, may be NULL */
	bool                bookmarks;
	bool                initial_end_bookmark; /* sendInitialEvents */
	int64_t             timeout_ms;
	enum ks_watch_start start;
	uint64_t            rv; /* for KS_WATCH_FROM_RV */
	const char         *user_agent; /* for /_sim/watchers (copied) */
	bool                table; /* objects as one-row meta.k8s.io Tables */
	const char         *label_selector; /* as requested, for /_sim/watchers
					       (copied; may be NULL) */
	const char         *field_selector;
	/* Fault injection (faults.h); zero values mean "no fault". */
	bool                fault_close;        /* end after events/time */
	int64_t             close_after_events; /* -1: not by count */
	int64_t             close_after_ms;     /* -1: not by time */
	int                 close_mode;         /* enum ks_close_mode */
	bool                bookmarks_off;
	int64_t             bookmark_every_ms;  /* 0: the global interval */
	int64_t             buffer_events;      /* 0: byte limit only */
	bool                truncate;      /* cut the stream ... */
	int64_t             trunc_after;   /* ... after this many bytes */
	int64_t             throttle_bps;  /* 0: unthrottled */
	int64_t             body_delay_ms; /* hold each write this long */
} ks_watch_params;

/* Creates the hub and registers it as a store observer. */
ks_watchhub *ks_watchhub_create(ks_sim *s);

/* Frees the hub.  Call after ks_httpd_destroy(), which has closed the
 * connections (and so removed their watches). */
void ks_watchhub_destroy(ks_watchhub *h);

/* Answers the request on `c` with a watch stream (or with one ERROR event
 * when `rv` is too old or too new). */
void ks_watch_start(ks_watchhub *h, ks_conn *c, ks_watch_params *wp);

/* Answers a watch request with 200 and one ERROR event carrying a Status
 * (`code`, `reason`, `message`, and `details` when not NULL — stolen),
 * then ends the stream. */
void ks_watch_send_error(ks_conn *c, int code, const char *reason,
    const char *message, json_t *details);

/* Number of open watches. */
size_t ks_watchhub_count(const ks_watchhub *h);

/* Per-watch buffer limit in bytes before a slow watch is dropped. */
void ks_watchhub_set_buffer_limit(ks_watchhub *h, size_t bytes);

/* Ends every watch of `group`/`resource` in plane `p` cleanly (its CRD was
 * deleted). */
void ks_watchhub_end_resource(ks_watchhub *h, ks_plane *p, const char *group,
    const char *resource);

/* Sends a bookmark now to watch `id` (0: every watch that allows them).
 * Returns how many got one. */
size_t ks_watchhub_bookmark(ks_watchhub *h, uint64_t id);

/* Ends every watch of plane `p` cleanly (the plane "went away"). */
void ks_watchhub_end_plane(ks_watchhub *h, ks_plane *p);

/* JSON array describing every open watch (for /_sim/watchers).  New. */
json_t *ks_watchhub_describe(const ks_watchhub *h);

#endif /* KS_WATCH_H */
