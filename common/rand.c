/*
 * rand.c — random identifiers (rand.h).
 */
#include "rand.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/types.h>

void
mcf_rand_hex(char *out, size_t nbytes)
{
	unsigned char b[32];
	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	if (getrandom(b, nbytes, 0) != (ssize_t) nbytes) {
		for (size_t i = 0; i < nbytes; i++)
			b[i] = (unsigned char) rand();
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * nbytes] = '\0';
}
