/*
 * sim.c — the simulated server clock (wall clock plus the /_sim/clock
 * offset) and its timestamp formats.
 */
#include "sim.h"

#include <stdio.h>
#include <time.h>

void
ks_sim_now(const ks_sim *s, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += s->clock_offset_s;
}

void
ks_sim_time(const ks_sim *s, char *buf, size_t len)
{
	struct timespec ts;
	struct tm       tm;
	ks_sim_now(s, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
ks_sim_microtime(const ks_sim *s, char *buf, size_t len)
{
	struct timespec ts;
	struct tm       tm;
	ks_sim_now(s, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int) (ts.tv_nsec / 1000));
}
