/*
 * rand.h — random identifiers (incarnations, instance suffixes).
 *
 * Not for keys: the bytes come from getrandom(2), and, should it fail,
 * from rand(), which is good enough for an identifier that only has to
 * differ between process starts.
 */
#ifndef MCF_COMMON_RAND_H
#define MCF_COMMON_RAND_H

#include <stddef.h>

/* Writes `nbytes` (at most 32) random bytes as 2 * nbytes lower-case hex
 * digits and a NUL into `out`, which must hold 2 * nbytes + 1 bytes. */
void mcf_rand_hex(char *out, size_t nbytes);

#endif /* MCF_COMMON_RAND_H */
