/*
 * reject.c — rejection reasons, their counters and their log lines.
 *
 * Counting must be exact (tests check that one rogue frame moves one
 * counter by one) and cheap on any thread, so each reason has a relaxed
 * atomic counter.  Logging must not let a flood of rogue frames flood the
 * log as well, so each reason has a small window limiter: the first
 * LOG_BURST rejections of a reason in a LOG_WINDOW_S-second window are
 * logged, the rest only counted, and the first line of the next window
 * says how many were left out.  The limiter's state is guarded by `mtx`,
 * which is never held while the line is written.
 */
#include "reject.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

#define LOG_BURST 20
#define LOG_WINDOW_S 10

struct mcf_proto_reject_stats {
	_Atomic uint64_t rejected[MCF_PROTO_REJECT_COUNT];
	_Atomic uint64_t accepted;
	pthread_mutex_t  mtx; /* guards the limiter fields below */
	int64_t          window_start[MCF_PROTO_REJECT_COUNT];
	uint32_t         logged[MCF_PROTO_REJECT_COUNT];
	uint64_t         suppressed[MCF_PROTO_REJECT_COUNT];
};

static const struct {
	const char *name;
	int         code;
} reasons[MCF_PROTO_REJECT_COUNT] = {
	[MCF_PROTO_REJECT_NONE]         = { "none", MCF_OK },
	[MCF_PROTO_REJECT_TOO_BIG]      = { "too_big", MCF_ETOOBIG },
	[MCF_PROTO_REJECT_MALFORMED]    = { "malformed", MCF_EPROTO },
	[MCF_PROTO_REJECT_BAD_AUTH]     = { "bad_auth", MCF_EAUTH },
	[MCF_PROTO_REJECT_REPLAY]       = { "replay", MCF_EPROTO },
	[MCF_PROTO_REJECT_VERSION]      = { "version", MCF_EUNSUPP },
	[MCF_PROTO_REJECT_LOWER_TERM]   = { "lower_term", MCF_EPERM },
	[MCF_PROTO_REJECT_UNKNOWN_TYPE] = { "unknown_type", MCF_EUNSUPP },
	[MCF_PROTO_REJECT_UNEXPECTED]   = { "unexpected", MCF_EPROTO },
};

static bool
reason_valid(enum mcf_proto_reason reason)
{
	return (int) reason >= 0 && (int) reason < MCF_PROTO_REJECT_COUNT;
}

const char *
mcf_proto_reject_reason_name(enum mcf_proto_reason reason)
{
	if (!reason_valid(reason))
		return "invalid";
	return reasons[reason].name;
}

int
mcf_proto_reject_code(enum mcf_proto_reason reason)
{
	if (!reason_valid(reason))
		return MCF_EINVAL;
	return reasons[reason].code;
}

int
mcf_proto_reject_set(
    mcf_proto_reject *r, enum mcf_proto_reason reason, const char *fmt, ...)
{
	int code = mcf_proto_reject_code(reason);
	if (r != NULL) {
		va_list ap;
		r->reason = reason;
		r->code   = code;
		va_start(ap, fmt);
		vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void
mcf_proto_reject_clear(mcf_proto_reject *r)
{
	if (r != NULL) {
		r->reason = MCF_PROTO_REJECT_NONE;
		r->code   = MCF_OK;
		r->msg[0] = '\0';
	}
}

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("proto reject: pthread_mutex_lock failed");
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("proto reject: pthread_mutex_unlock failed");
}

int
mcf_proto_reject_stats_create(mcf_proto_reject_stats **out)
{
	mcf_proto_reject_stats *st = mcf_calloc(1, sizeof(*st));
	for (int i = 0; i < MCF_PROTO_REJECT_COUNT; i++)
		atomic_init(&st->rejected[i], 0);
	atomic_init(&st->accepted, 0);
	if (pthread_mutex_init(&st->mtx, NULL) != 0) {
		free(st);
		return MCF_ESYS;
	}
	*out = st;
	return MCF_OK;
}

void
mcf_proto_reject_stats_destroy(mcf_proto_reject_stats *st)
{
	if (st == NULL)
		return;
	pthread_mutex_destroy(&st->mtx);
	free(st);
}

static int64_t
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec;
}

void
mcf_proto_reject_stats_record(
    mcf_proto_reject_stats *st, const mcf_proto_reject *r, const char *peer)
{
	if (st == NULL || r == NULL || !reason_valid(r->reason)
	    || r->reason == MCF_PROTO_REJECT_NONE)
		return;
	atomic_fetch_add_explicit(
	    &st->rejected[r->reason], 1, memory_order_relaxed);

	bool     log_it  = false;
	uint64_t dropped = 0;
	int64_t  now     = mono_s();
	lock(&st->mtx);
	if (st->logged[r->reason] == 0
	    || now - st->window_start[r->reason] >= LOG_WINDOW_S) {
		dropped                     = st->suppressed[r->reason];
		st->suppressed[r->reason]   = 0;
		st->window_start[r->reason] = now;
		st->logged[r->reason]       = 0;
	}
	if (st->logged[r->reason] < LOG_BURST) {
		st->logged[r->reason]++;
		log_it = true;
	} else {
		st->suppressed[r->reason]++;
	}
	unlock(&st->mtx);

	if (dropped > 0)
		mcf_log_warn("PROTO-REJECT-SUPPRESSED",
		    "%llu more rejected frames with reason %s were counted "
		    "but not logged in the last %d s",
		    (unsigned long long) dropped,
		    mcf_proto_reject_reason_name(r->reason), LOG_WINDOW_S);
	if (log_it)
		mcf_log_warn("PROTO-REJECT",
		    "rejected frame from %s (reason %s): %s",
		    peer != NULL ? peer : "?",
		    mcf_proto_reject_reason_name(r->reason), r->msg);
}

void
mcf_proto_reject_stats_accept(mcf_proto_reject_stats *st)
{
	if (st != NULL)
		atomic_fetch_add_explicit(
		    &st->accepted, 1, memory_order_relaxed);
}

uint64_t
mcf_proto_reject_stats_get(
    const mcf_proto_reject_stats *st, enum mcf_proto_reason reason)
{
	if (st == NULL || !reason_valid(reason))
		return 0;
	return atomic_load_explicit(
	    (_Atomic uint64_t *) &st->rejected[reason], memory_order_relaxed);
}

uint64_t
mcf_proto_reject_stats_accepted(const mcf_proto_reject_stats *st)
{
	if (st == NULL)
		return 0;
	return atomic_load_explicit(
	    (_Atomic uint64_t *) &st->accepted, memory_order_relaxed);
}

void
mcf_proto_reject_stats_collect(mcf_metrics_writer *w, void *arg)
{
	const mcf_proto_reject_stats *st = arg;
	for (int i = 1; i < MCF_PROTO_REJECT_COUNT; i++) {
		const char *labels[] = { "reason",
			mcf_proto_reject_reason_name(
			    (enum mcf_proto_reason) i),
			NULL };
		mcf_metrics_write_counter(w,
		    "mcfleet_proto_frames_rejected_total",
		    "Coordinator-worker protocol frames rejected, by reason.",
		    labels,
		    (double) mcf_proto_reject_stats_get(
		        st, (enum mcf_proto_reason) i));
	}
	mcf_metrics_write_counter(w, "mcfleet_proto_frames_accepted_total",
	    "Coordinator-worker protocol frames accepted.", NULL,
	    (double) mcf_proto_reject_stats_accepted(st));
}
