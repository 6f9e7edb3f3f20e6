/*
 * fleet.h — the coordinator's fleet: the NNG listener workers dial, one
 * protocol session per pipe, and the control state machine that owns
 * everything the leader decides (docs/fleet.md is the contract).
 *
 * What it holds, all on one control thread (mcf_fleet_run):
 *
 *   - the Milo provider's view of every project (provider.h), fed by an
 *     informer on Projects or ProjectControlPlanes;
 *   - membership (members.h), fed by an informer on the Leases of the
 *     namespace, and by HELLO/LEAVING;
 *   - the desired owners (common/sharder), recomputed when projects or
 *     members change — by a standby too, so a takeover starts warm;
 *   - while leading: per project its owner, the workers that may still
 *     run it, its reported state; per worker its session, what the leader
 *     knows of it, its table version and acknowledgements; the plan
 *     (plan.h) applied as one ASSIGN_DELTA per worker per step.
 *
 * Threads (see coordinator/main.c for the whole process):
 *   - NNG's threads run the pipe-event and receive callbacks, which only
 *     queue an event and wake the control thread;
 *   - the informer loop thread runs the informer handlers, which only
 *     queue an event (with a reference to the object);
 *   - the elector thread calls mcf_fleet_on_started_leading /
 *     _on_stopped_leading, which only queue an event;
 *   - the HTTP server thread calls mcf_fleet_status (which asks the
 *     control thread for a fresh document and waits briefly),
 *     mcf_fleet_ready and mcf_fleet_healthy (atomics);
 *   - the control thread (mcf_fleet_run) does everything else, including
 *     every send: frames of one pipe are sealed and sent by this thread
 *     only, in order.
 *
 * Lifecycle: create (binds the listener, so the URL can be printed) →
 * set_status_url / set_elector → start (informers, receiving) → run (until
 * the stop fd is readable) → stop (closes the socket, releases the
 * informers; no callback runs after it returns) → destroy.
 */
#ifndef MCF_COORDINATOR_FLEET_H
#define MCF_COORDINATOR_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "informer.h"
#include "keys.h"
#include "kubeconfig.h"
#include "leaderelect.h"
#include "provider.h"
#include "transport.h"

typedef struct mcf_fleet mcf_fleet;

/* Configuration: a plain value type; strings are copied by create. */
typedef struct mcf_fleet_config {
	const char *identity;  /* this coordinator (Lease holder identity) */
	const char *listen;    /* NNG URL; port 0 allowed */
	const mcf_proto_tls_opts *tls; /* for a tls+tcp:// listen URL
	                                  (transport.h); may be NULL */
	const char *advertise; /* host, host:port or URL; NULL/"": POD_IP,
	                          else the listen host (wildcard: 127.0.0.1) */
	const char *namespace; /* of the Leases */
	const char      *lease_name;       /* the coordinator Lease */
	mcf_provider_cfg provider;         /* strings copied */
	const char      *project_selector; /* label selector, NULL: none */
	mcf_proto_keys  *keys;             /* borrowed until destroy */
	int64_t          heartbeat_ms;     /* > 0 */
	size_t           max_engages;      /* >= 1 */
	double           epsilon;          /* sharder load bound */
	size_t           max_frame;        /* 0: the protocol default */
	const mcf_kubeconfig *kc; /* core API; borrowed until start returns */
	const char           *user_agent;
} mcf_fleet_config;

/* Creates the fleet and binds the NNG listener (pair1, polyamorous).
 * Errors: MCF_EINVAL (bad configuration or URL), MCF_ESYS/MCF_EIO (the
 * listener could not bind), with a message in `ei`.  *out is new. */
int mcf_fleet_create(
    const mcf_fleet_config *cfg, mcf_fleet **out, mcf_errinfo *ei);

/* The bound listener as a dialable URL ("tcp://127.0.0.1:40125"): a
 * wildcard host is shown as 127.0.0.1.  Borrowed until destroy. */
const char *mcf_fleet_listen_url(const mcf_fleet *f);

/* The address published on the Lease (mcfleet.io/fleet-address), and the
 * host part of it.  Borrowed until destroy. */
const char *mcf_fleet_address(const mcf_fleet *f);
const char *mcf_fleet_advertise_host(const mcf_fleet *f);

/* This coordinator's /status URL (copied), for WELCOME and /status.
 * Before start. */
void mcf_fleet_set_status_url(mcf_fleet *f, const char *url);

/* The elector (borrowed until stop): consulted before every send, so a
 * leader that lost the Lease stops streaming even before its callback
 * arrives.  Before start. */
void mcf_fleet_set_elector(mcf_fleet *f, mcf_le *le);

/* Acquires the informers (on `loop`, borrowed until stop) and starts
 * receiving.  Errors from mcf_inf_acquire or NNG, with `ei`. */
int mcf_fleet_start(mcf_fleet *f, mcf_inf_loop *loop, mcf_errinfo *ei);

/* Elector callbacks (mcf_le_config.on_started_leading/_stopped_leading
 * with arg = the fleet): they only queue an event.  Any thread. */
void mcf_fleet_on_started_leading(void *arg, const mcf_le_fence *term);
void mcf_fleet_on_stopped_leading(void *arg);

/* Runs the control loop on the calling thread until `stop_fd` becomes
 * readable (its content is not read).  Returns MCF_OK, or MCF_ESYS if
 * polling fails. */
int mcf_fleet_run(mcf_fleet *f, int stop_fd);

/* A fresh /status document (new string, free()), asked from the control
 * thread and waited for at most `timeout_ms`; after a timeout the last
 * document built, or NULL if there is none.  Any thread but the control
 * thread. */
char *mcf_fleet_status(mcf_fleet *f, int64_t timeout_ms);

/* True once the provider and Lease informers have synced.  Any thread. */
bool mcf_fleet_ready(mcf_fleet *f);

/* True while the control loop turns (it ran within the last 10 s, or
 * has not started yet).  Any thread. */
bool mcf_fleet_healthy(mcf_fleet *f);

/* Stops: closes the socket (no NNG callback after return), releases the
 * informers, frees queued events.  Idempotent.  Not from a callback. */
void mcf_fleet_stop(mcf_fleet *f);

/* Stops if needed and frees.  Accepts NULL. */
void mcf_fleet_destroy(mcf_fleet *f);

#endif /* MCF_COORDINATOR_FLEET_H */
