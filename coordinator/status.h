/*
 * status.h — the coordinator's /status document (issue 5 §4,
 * ARCHITECTURE.md "Observability"), built from a plain view of the
 * control thread's state so that its shape is unit-tested on its own.
 *
 * The document (times are RFC 3339 UTC with milliseconds, or null):
 *
 *   {
 *     "role": "leader" | "standby",
 *     "identity": this coordinator's identity,
 *     "version": "0.1.0", "mode": "external" | "internal",
 *     "ready": informers synced,
 *     "leader": null | {"identity", "term": {"uid", "transitions"},
 *                       "address", "status_url"},
 *     "workers": [{"name", "incarnation", "weight", "state",
 *                  "projects", "last_heartbeat", "address",
 *                  "status_url", "connected"}],
 *     "projects": [{"name", "owner" (string or null), "state",
 *                   "reason", "since", "desired" (string or null)}],
 *     "engages_held_for": [worker names],
 *     "rebalance": {"handoffs", "worker_failovers",
 *                   "projects_failed_over", "leader_acquisitions",
 *                   "engages", "disengages", "engages_in_flight",
 *                   "moving", "table_version"}
 *   }
 *
 * Workers and projects are sorted by name.  A standby lists no projects.
 *
 * Thread model: pure functions; any thread.  Views are borrowed.
 */
#ifndef MCF_COORDINATOR_STATUS_H
#define MCF_COORDINATOR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Buffer size for mcf_status_time(). */
#define MCF_STATUS_TIME_LEN 32

/* Formats unix milliseconds as "2026-11-24T15:04:05.123Z" into `buf`
 * (MCF_STATUS_TIME_LEN bytes).  Returns `buf`. */
char *mcf_status_time(int64_t unix_ms, char *buf);

typedef struct mcf_status_leader {
	const char *identity;
	const char *term_uid; /* "" when unknown */
	int64_t     term_transitions;
	const char *address;    /* fleet URL, "" unknown */
	const char *status_url; /* "" unknown */
} mcf_status_leader;

typedef struct mcf_status_worker {
	const char *name;
	const char *incarnation;
	uint32_t    weight;
	const char *state; /* joining, active, leaving, gone */
	size_t      projects;
	int64_t     last_heartbeat_ms; /* unix ms; 0: never (null) */
	const char *address;           /* NNG peer, "" */
	const char *status_url;        /* "" */
	bool        connected;
} mcf_status_worker;

typedef struct mcf_status_project {
	const char *name;
	const char *owner;    /* NULL: null */
	const char *state;    /* pending, engaging, synced, failing */
	const char *reason;   /* "" */
	int64_t     since_ms; /* unix ms; 0: null */
	const char *desired;  /* NULL: null */
} mcf_status_project;

typedef struct mcf_status_counters {
	uint64_t handoffs;
	uint64_t worker_failovers;
	uint64_t projects_failed_over;
	uint64_t leader_acquisitions;
	uint64_t engages;
	uint64_t disengages;
	uint64_t engages_in_flight;
	uint64_t moving;
	uint64_t table_version;
} mcf_status_counters;

typedef struct mcf_status_view {
	bool                      leading;
	const char               *identity;
	const char               *mode;
	bool                      ready;
	const mcf_status_leader  *leader; /* NULL: null */
	const mcf_status_worker  *workers;
	size_t                    nworkers;
	const mcf_status_project *projects; /* ignored unless leading */
	size_t                    nprojects;
	const char *const        *held_for;
	size_t                    nheld_for;
	mcf_status_counters       counters;
} mcf_status_view;

/* Builds the document (new reference).  The arrays in `v` may be in any
 * order; the document lists them sorted by name. */
json_t *mcf_status_build(const mcf_status_view *v);

#endif /* MCF_COORDINATOR_STATUS_H */
