/*
 * fleet.h — the worker's fleet mode (docs/fleet.md): keep a Lease of its
 * own, find the leading coordinator through the coordinator Lease, follow
 * its assignment over NNG, run the assigned projects' controllers, report
 * their state, and hand them back on SIGTERM.
 *
 * One control thread (the caller of mcf_fleet_run) owns everything that
 * changes state: the controller manager, the shard (shard.h), the
 * coordinator Lease reads (leaderwatch.h), the NNG session (session.h).
 * Other threads only wake it: the elector's callbacks, NNG's pipe
 * notifications and the caller's signal pipe.  The status server's
 * handlers read a snapshot published under the fleet's mutex `mtx`, the
 * shard's status calls and the manager's thread-safe calls.
 *
 * Lifecycle: mcf_fleet_config_check (usage errors), mcf_fleet_create,
 * mcf_fleet_routes (before the status server starts), mcf_fleet_run
 * (until SIGTERM and the hand-off), mcf_fleet_destroy.
 */
#ifndef MCF_WORKER_FLEET_H
#define MCF_WORKER_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "controller.h"
#include "err.h"
#include "httpserver.h"
#include "kubeconfig.h"

/* Defaults (ARCHITECTURE.md "Conventions", docs/fleet.md). */
#define MCF_FLEET_NAMESPACE "mcfleet-system"
#define MCF_FLEET_COORDINATOR_LEASE "mcfleet-coordinator"
#define MCF_FLEET_LEASE_PREFIX "mcfleet-worker-"
#define MCF_FLEET_LEASE_DURATION_MS 3000
#define MCF_FLEET_RENEW_PERIOD_MS 1000
#define MCF_FLEET_HEARTBEAT_MS 1000
#define MCF_FLEET_DRAIN_TIMEOUT_MS 20000
#define MCF_FLEET_LEASE_POLL_MS 1000
/* How often engaged projects' states are polled for reports: every
 * MCF_FLEET_STATE_POLL_MS, and every MCF_FLEET_ENGAGING_POLL_MS while a
 * project is engaging (its "synced" is the engage latency a leader sees). */
#define MCF_FLEET_STATE_POLL_MS 200
#define MCF_FLEET_ENGAGING_POLL_MS 25

/* Annotations on the worker's own Lease. */
#define MCF_FLEET_WEIGHT_ANNOTATION "mcfleet.io/weight"
#define MCF_FLEET_INCARNATION_ANNOTATION "mcfleet.io/incarnation"
#define MCF_FLEET_STATUS_ANNOTATION "mcfleet.io/status-url"
/* How many projects may have reconcilers running here, on every renew:
 * "0" lets a new leader that cannot reach this worker know it holds
 * nothing (docs/fleet.md "Reports and the first snapshot"). */
#define MCF_FLEET_ENGAGED_ANNOTATION "mcfleet.io/engaged"

typedef struct mcf_fleet_config {
	const mcf_ctrl_def *const *defs; /* borrowed for the fleet's life */
	size_t                     n_defs;
	/* The core API (Leases) and the credentials used for project
	 * planes (each engage copies it with the assignment's endpoint as
	 * server); both borrowed for the call (copied). */
	const mcf_kubeconfig *kc;
	const mcf_kubeconfig *project_kc;
	/* Strings: borrowed for the call, copied. */
	const char *namespace;         /* of every Lease */
	const char *coordinator_lease; /* the coordinators' Lease */
	const char *name;        /* this worker; Lease mcfleet-worker-NAME */
	const char *incarnation; /* random per process start */
	const char *user_agent;  /* every request's User-Agent */
	const char *status_url;  /* this worker's /status, or NULL */
	const char *key_file;    /* HMAC key(s), required */
	const char *key_file_previous; /* optional previous key */
	/* TLS to a tls+tcp:// coordinator (proto/transport.h): CA to verify
	 * it (with a CA set, a plaintext address is refused), optional
	 * client certificate and key, optional name to verify. */
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_server_name;
	uint32_t    weight;            /* >= 1 */
	/* Own Lease timing (leaderelect.h constraints apply). */
	int64_t lease_duration_ms;
	int64_t renew_deadline_ms;
	int64_t renew_period_ms;
	int64_t heartbeat_ms;     /* until WELCOME says otherwise */
	int64_t drain_timeout_ms; /* SIGTERM hand-off bound */
	int64_t lease_poll_ms;    /* coordinator Lease reads; 0: 1 s */
	int64_t resync_ms;        /* informer resync; 0: off */
	int     watch_timeout_s;  /* 0: informer default */
	size_t  max_frame;        /* 0: proto default */
	/* The caller's signal self-pipe (read end): each byte is a SIGTERM
	 * or SIGINT.  The first starts the drain, a second ends it. */
	int term_fd;
} mcf_fleet_config;

typedef struct mcf_fleet mcf_fleet;

/* Checks `cfg` as a usage check: MCF_EINVAL with a message naming the
 * flag (--name, --weight, --key-file, --lease-duration, ...) in `ei`. */
int mcf_fleet_config_check(const mcf_fleet_config *cfg, mcf_errinfo *ei);

/* Creates the fleet: loads the key file(s), creates the paused
 * controller manager and the elector of the own Lease, registers the
 * metrics.  Errors (runtime: a key file that does not load, a manager
 * that does not start) with a message in `ei`.  *out is new
 * (mcf_fleet_destroy); untouched on failure.  Call on the thread that
 * will call mcf_fleet_run. */
int mcf_fleet_create(
    const mcf_fleet_config *cfg, mcf_fleet **out, mcf_errinfo *ei);

/* Routes /healthz, /readyz, /metrics and /status of `srv` (not started
 * yet) to the fleet's handlers.  The fleet must outlive the server's
 * stop. */
int mcf_fleet_routes(mcf_fleet *f, mcf_httpserver *srv);

/* Runs the control loop until a SIGTERM drain completes: returns 0 after
 * the projects were handed off (or the drain timed out), disengaged, the
 * reconcilers stopped and the own Lease released; 1 when the loop could
 * not start (the elector's client, the coordinator Lease client). */
int mcf_fleet_run(mcf_fleet *f);

/* Frees everything (disengaging what may still be engaged).  Accepts
 * NULL.  Stop the status server first. */
void mcf_fleet_destroy(mcf_fleet *f);

#endif /* MCF_WORKER_FLEET_H */
