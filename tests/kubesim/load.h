/*
 * load.h — the server-side load generator, POST /_sim/load (KUBE_API.md
 * part 1): writes performed inside kubesim, with the same watch events
 * client writes would cause, so a client's event throughput can be
 * measured without a writer in the way.
 *
 * The writes run in batches from loop timers, so watch streams are flushed
 * between batches; with a rate they are paced in 10 ms ticks.  The request
 * is answered when the last write is done with {"count", "first_rv",
 * "last_rv", "seconds"}; a client that hangs up stops the run.
 */
#ifndef KS_LOAD_H
#define KS_LOAD_H

#include <jansson.h>

#include "httpd.h"
#include "sim.h"

/* Validates `spec` (borrowed) and starts the run on `c`, or answers 400 /
 * 404 at once.  `log` is the request's log entry (borrowed; its "status"
 * is set when the answer is sent). */
void ks_load_start(ks_sim *s, ks_conn *c, const json_t *spec, json_t *log);

#endif /* KS_LOAD_H */
