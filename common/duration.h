/*
 * duration.h — durations written as in Go and Kubernetes: "500ms", "15s",
 * "2m", "1h", "1m30s", "1.5s", "0s" (also "0").  Units: ns, us, ms, s, m, h.
 * Values are held in milliseconds; sub-millisecond parts are truncated.
 */
#ifndef MCF_COMMON_DURATION_H
#define MCF_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parses `s` into milliseconds.  Rejects empty input, missing units (except
 * a bare "0"), unknown units, negative values and overflow with MCF_EINVAL
 * or MCF_ERANGE and a message quoting the input. */
int mcf_duration_parse(const char *s, int64_t *out_ms, mcf_errinfo *ei);

/* Formats `ms` the short way ("1.5s", "2m0s", "500ms") into `buf`. */
void mcf_duration_format(int64_t ms, char *buf, size_t len);

#endif /* MCF_COMMON_DURATION_H */
