/*
 * term.c — comparing fencing terms (the rule is in term.h).
 */
#include "term.h"

#include <stdio.h>
#include <string.h>

bool
mcf_proto_term_is_set(const mcf_proto_term *t)
{
	return t->uid[0] != '\0';
}

void
mcf_proto_term_set(mcf_proto_term *t, const char *uid, int64_t transitions)
{
	snprintf(t->uid, sizeof(t->uid), "%s", uid != NULL ? uid : "");
	t->transitions = transitions;
}

enum mcf_proto_term_order
mcf_proto_term_cmp(const mcf_proto_term *seen, const mcf_proto_term *got)
{
	bool have_seen = mcf_proto_term_is_set(seen);
	bool have_got  = mcf_proto_term_is_set(got);

	if (!have_seen)
		return have_got ? MCF_PROTO_TERM_HIGHER : MCF_PROTO_TERM_EQUAL;
	if (!have_got)
		return MCF_PROTO_TERM_LOWER;
	if (strncmp(seen->uid, got->uid, sizeof(seen->uid)) != 0)
		return MCF_PROTO_TERM_OTHER_LEASE;
	if (got->transitions < seen->transitions)
		return MCF_PROTO_TERM_LOWER;
	if (got->transitions > seen->transitions)
		return MCF_PROTO_TERM_HIGHER;
	return MCF_PROTO_TERM_EQUAL;
}

bool
mcf_proto_term_accept(
    const mcf_proto_term *seen, const mcf_proto_term *got, bool old_lease_gone)
{
	switch (mcf_proto_term_cmp(seen, got)) {
	case MCF_PROTO_TERM_EQUAL:
	case MCF_PROTO_TERM_HIGHER:
		return true;
	case MCF_PROTO_TERM_OTHER_LEASE:
		return old_lease_gone;
	case MCF_PROTO_TERM_LOWER:
	default:
		return false;
	}
}
