/*
 * sim.h — the state of one kubesim process, passed explicitly to every
 * module that needs more than its own object (STYLE.md §9: no global
 * server struct).  Everything in it belongs to the loop thread.
 */
#ifndef KS_SIM_H
#define KS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "httpd.h"
#include "store.h"

typedef struct ks_watchhub ks_watchhub;
typedef struct ks_milo     ks_milo;
typedef struct ks_faults   ks_faults;

typedef struct ks_sim_options {
	int64_t     bookmark_ms;        /* --bookmark-interval */
	int64_t     watch_timeout_ms;   /* --watch-default-timeout */
	int64_t     ready_after_ms;     /* --project-ready-after, <0 off */
	size_t      history;            /* --history-events */
	bool        rv0_ignores_limit;  /* --rv0-ignores-limit */
	bool        legacy_discovery;   /* --discovery legacy */
	bool        table;              /* --table on: Table for kubectl get */
	const char *gitversion;         /* --gitversion */
	size_t      request_log;        /* entries kept for /_sim/requests */
} ks_sim_options;

typedef struct ks_sim {
	ks_sim_options opt;
	ks_httpd      *httpd;   /* owned */
	ks_store      *store;   /* owned */
	ks_watchhub   *hub;     /* owned */
	ks_milo       *milo;    /* owned; NULL when the controller is off */
	ks_faults     *faults;  /* owned: /_sim/faults rules */
	int64_t        clock_offset_s; /* /_sim/clock */
	json_t        *reqlog;  /* array of request entries (owned) */
	void          *pending; /* ops.c: scheduled background tasks */
	json_t        *owners;  /* ops.c: plane → owner uid → {dependent
				   key: true}, for garbage collection */
	uint64_t       reqseq;  /* last request sequence number */
} ks_sim;

/* Wall-clock time as the simulated server sees it (with the offset). */
void ks_sim_now(const ks_sim *s, struct timespec *ts);

/* metav1.Time "2006-01-02T15:04:05Z" for now; buf ≥ 32 bytes. */
void ks_sim_time(const ks_sim *s, char *buf, size_t len);

/* metav1.MicroTime "2006-01-02T15:04:05.000000Z" for now. */
void ks_sim_microtime(const ks_sim *s, char *buf, size_t len);

#endif /* KS_SIM_H */
