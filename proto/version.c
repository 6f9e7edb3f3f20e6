/*
 * version.c — version negotiation (rules in version.h).
 */
#include "version.h"

#include <stdio.h>
#include <string.h>

int
mcf_proto_version_negotiate(uint32_t peer_major, uint32_t peer_minor,
    uint32_t *minor_out, mcf_proto_version_reject *reject)
{
	/* A variable, not the macro, so the test stays warning-free while
	 * MCF_PROTO_MINOR_MIN is 0. */
	static const uint32_t min_minor = MCF_PROTO_MINOR_MIN;
	if (peer_major == MCF_PROTO_MAJOR && peer_minor >= min_minor) {
		if (minor_out != NULL)
			*minor_out = peer_minor < MCF_PROTO_MINOR
			    ? peer_minor
			    : MCF_PROTO_MINOR;
		return MCF_OK;
	}
	if (reject != NULL) {
		memset(reject, 0, sizeof(*reject));
		reject->major      = MCF_PROTO_MAJOR;
		reject->min_minor  = MCF_PROTO_MINOR_MIN;
		reject->max_minor  = MCF_PROTO_MINOR;
		reject->peer_major = peer_major;
		reject->peer_minor = peer_minor;
		const char *hint   = peer_major > MCF_PROTO_MAJOR
		      ? "the worker is newer: upgrade the coordinator first"
		      : "the worker is too old: upgrade the worker";
		snprintf(reject->message, sizeof(reject->message),
		    "coordinator speaks %d.%d\xe2\x80\x93%d.%d, worker sent "
		    "%u.%u; %s",
		    MCF_PROTO_MAJOR, MCF_PROTO_MINOR_MIN, MCF_PROTO_MAJOR,
		    MCF_PROTO_MINOR, peer_major, peer_minor, hint);
	}
	return MCF_EUNSUPP;
}
