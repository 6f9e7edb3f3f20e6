/*
 * msg.h — the coordinator⇄worker messages and their msgpack encoding.
 *
 * Each message is one msgpack map from field name (str) to value, the
 * payload of one frame (frame.h) whose header names the message type.
 * proto/README.md lists every field with its msgpack type; one schema table
 * in msg.c drives both encoding and decoding, so the two cannot disagree.
 *
 * Compatibility rules (version.h): unknown map keys are ignored; a nil
 * value is treated as an absent field; a field added in a later minor is
 * always optional, with the default stated below; a required field that is
 * missing, a value of the wrong msgpack type or out of range, a duplicate
 * field, a string that is not UTF-8 or holds a NUL byte, nesting deeper
 * than 16 or more than 2^20 msgpack objects are MALFORMED, with a message
 * naming the message and the field ("ACK: field 'projects[2].state':
 * expected a string, got an unsigned integer").  A message type this build
 * does not know is UNKNOWN_TYPE (ignored) when the frame comes from a newer
 * minor, MALFORMED otherwise; a known type sent in the wrong direction is
 * UNEXPECTED.
 *
 * Ownership: an mcf_proto_msg returned by mcf_proto_msg_decode() is new:
 * every string and array in it is owned by it and freed by
 * mcf_proto_msg_destroy(); optional strings that were absent are "" (never
 * NULL).  A message the caller fills in for mcf_proto_msg_encode() only
 * borrows its strings and arrays for the call; the caller never passes it
 * to mcf_proto_msg_destroy().  Optional strings may be NULL there
 * (omitted).
 *
 * Thread model: pure functions; any thread.
 */
#ifndef MCF_PROTO_MSG_H
#define MCF_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reject.h"
#include "term.h"
#include "version.h"

/* Message types: the frame header's type byte.  Numbers never change;
 * HELLO and VERSION_REJECT are frozen across majors (version.h). */
enum mcf_proto_type {
	MCF_PROTO_MSG_HELLO           = 1,  /* worker → coordinator */
	MCF_PROTO_MSG_VERSION_REJECT  = 2,  /* coordinator → worker */
	MCF_PROTO_MSG_WELCOME         = 3,  /* coordinator → worker */
	MCF_PROTO_MSG_ASSIGN_SNAPSHOT = 4,  /* coordinator → worker */
	MCF_PROTO_MSG_ASSIGN_DELTA    = 5,  /* coordinator → worker */
	MCF_PROTO_MSG_ACK             = 6,  /* worker → coordinator */
	MCF_PROTO_MSG_STOPPED         = 7,  /* worker → coordinator */
	MCF_PROTO_MSG_LEAVING         = 8,  /* worker → coordinator */
	MCF_PROTO_MSG_HEARTBEAT       = 9,  /* both ways */
	MCF_PROTO_MSG_RESYNC_REQUEST  = 10, /* worker → coordinator */
	MCF_PROTO_MSG_NOT_LEADER      = 11, /* coordinator → worker */
};
/* The highest message type this build knows. */
#define MCF_PROTO_MSG_TYPE_MAX 11

/* Who sends a message. */
enum mcf_proto_peer {
	MCF_PROTO_PEER_COORDINATOR = 1,
	MCF_PROTO_PEER_WORKER      = 2,
};

/* A project's state in an ACK report.  On the wire a string; a state
 * this build does not know (from a newer minor) decodes as UNKNOWN. */
enum mcf_proto_pstate {
	MCF_PROTO_PSTATE_UNKNOWN = 0,
	MCF_PROTO_PSTATE_ENGAGING, /* "engaging": client and informers
	                              starting, caches not yet synced */
	MCF_PROTO_PSTATE_SYNCED,   /* "synced": caches synced, reconciling */
	MCF_PROTO_PSTATE_FAILING,  /* "failing": cannot reach or sync the
	                              project; retrying (see reason) */
	MCF_PROTO_PSTATE_STOPPED,  /* "stopped": reconcilers fully stopped */
};

/* One entry of an assignment table: a project this worker must engage. */
typedef struct mcf_proto_assignment {
	char *name;     /* project name, not empty */
	char *endpoint; /* URL of the project's control plane, not empty */
} mcf_proto_assignment;

/* One project's state in an ACK. */
typedef struct mcf_proto_report {
	char                 *name; /* project name, not empty */
	enum mcf_proto_pstate state;
	char                 *reason;   /* optional; "" */
	int64_t               since_ms; /* optional; unix ms of the last
	                                   state change, 0 unknown */
} mcf_proto_report;

/* HELLO: a worker opens a connection (and after every reconnect). */
typedef struct mcf_proto_hello {
	uint32_t       major; /* the worker's own protocol version */
	uint32_t       minor;
	char          *name;        /* "{statefulset}-{ordinal}", not empty */
	char          *incarnation; /* new at every process start, not empty */
	uint32_t       weight;      /* capacity, relative to other workers */
	mcf_proto_term term;        /* optional: the highest term seen */
	uint64_t       applied; /* optional: last applied table version, 0 */
	/* Since 1.1 (optional; "" from a 1.0 worker): */
	char *status_url; /* the worker's /status URL */
	char *lease; /* its own Lease's name; "" = mcfleet-worker-{name} */
} mcf_proto_hello;

/* WELCOME: the coordinator accepts a HELLO. */
typedef struct mcf_proto_welcome {
	uint32_t       major; /* the negotiated version */
	uint32_t       minor;
	mcf_proto_term term;       /* the leader's term, set */
	char          *leader;     /* the leader's identity, not empty */
	char          *status_url; /* optional: the coordinator's /status */
	uint32_t heartbeat_ms; /* each side sends a HEARTBEAT this often and
	                          suspects a peer silent for 3 intervals */
} mcf_proto_welcome;

/* ASSIGN_SNAPSHOT: the worker's whole table; anything not listed must be
 * stopped. */
typedef struct mcf_proto_snapshot {
	mcf_proto_term        term;    /* set */
	uint64_t              version; /* >= 1 */
	mcf_proto_assignment *projects;
	size_t                nprojects;
} mcf_proto_snapshot;

/* ASSIGN_DELTA: from table `base` to table `version`. */
typedef struct mcf_proto_delta {
	mcf_proto_term        term;    /* set */
	uint64_t              version; /* > base */
	uint64_t              base;
	mcf_proto_assignment *engage; /* optional list */
	size_t                nengage;
	char                **disengage; /* optional list of names */
	size_t                ndisengage;
} mcf_proto_delta;

/* ACK: the worker applied table `applied` of term `term`. */
typedef struct mcf_proto_ack {
	mcf_proto_term term; /* set */
	uint64_t       applied;
	bool           full;        /* optional: `projects` lists every project
	                               (else only those that changed) */
	mcf_proto_report *projects; /* optional list */
	size_t            nprojects;
} mcf_proto_ack;

/* STOPPED: reconcilers of these projects have fully stopped (the hand-off
 * confirmation of a disengage). */
typedef struct mcf_proto_stopped {
	mcf_proto_term term; /* set */
	char         **projects;
	size_t         nprojects;
} mcf_proto_stopped;

/* LEAVING: the worker got SIGTERM and is draining. */
typedef struct mcf_proto_leaving {
	uint64_t deadline_ms; /* optional: ms until it exits, 0 unknown */
	char    *reason;      /* optional */
} mcf_proto_leaving;

/* HEARTBEAT, both ways. */
typedef struct mcf_proto_heartbeat {
	int64_t        time_ms; /* sender's unix ms */
	uint64_t       seq;     /* heartbeat counter of the sender */
	mcf_proto_term term;    /* required (set) from the coordinator;
	                           optional from a worker */
	uint64_t applied;       /* optional (worker): last applied version */
} mcf_proto_heartbeat;

/* RESYNC_REQUEST: the worker saw a gap and asks for a snapshot. */
typedef struct mcf_proto_resync {
	mcf_proto_term term;    /* optional: the term it follows */
	uint64_t       applied; /* optional: its applied version */
	char          *reason;  /* optional */
} mcf_proto_resync;

/* NOT_LEADER: a standby coordinator turns a worker away. */
typedef struct mcf_proto_not_leader {
	char          *leader;  /* optional: the leader's identity */
	char          *address; /* optional: the leader's fleet URL */
	mcf_proto_term term;    /* optional: the leader's term */
} mcf_proto_not_leader;

/* A message: a plain value type, fields public.  `type` selects the union
 * member. */
typedef struct mcf_proto_msg {
	enum mcf_proto_type type;
	union {
		mcf_proto_hello          hello;
		mcf_proto_version_reject version_reject;
		mcf_proto_welcome        welcome;
		mcf_proto_snapshot       snapshot;
		mcf_proto_delta          delta;
		mcf_proto_ack            ack;
		mcf_proto_stopped        stopped;
		mcf_proto_leaving        leaving;
		mcf_proto_heartbeat      heartbeat;
		mcf_proto_resync         resync;
		mcf_proto_not_leader     not_leader;
	} u;
} mcf_proto_msg;

/* Zeroes `m` and sets its type. */
void mcf_proto_msg_init(mcf_proto_msg *m, enum mcf_proto_type type);

/* "HELLO", "ASSIGN_DELTA", ...; "UNKNOWN" for other values.  Never NULL. */
const char *mcf_proto_msg_type_name(int type);

/* True when `from` may send message type `type`. */
bool mcf_proto_msg_allowed(int type, enum mcf_proto_peer from);

/* "engaging", "synced", "failing", "stopped", "unknown". */
const char *mcf_proto_pstate_name(enum mcf_proto_pstate s);

/* Encodes `m` (borrowed) as sent by `from` into a new msgpack buffer
 * (*out, free()) of *len bytes.  Checks what decoding checks: required
 * fields present (strings not NULL), non-empty where required, terms set
 * where required, strings valid UTF-8, the direction, delta version above
 * base; MCF_EINVAL with a message in `ei` (may be NULL) otherwise. */
int mcf_proto_msg_encode(const mcf_proto_msg *m, enum mcf_proto_peer from,
    uint8_t **out, size_t *len, mcf_errinfo *ei);

/* Decodes a payload (borrowed) of message type `type` sent by `from` in a
 * frame whose header says minor version `minor`.  On success *out is new
 * (mcf_proto_msg_destroy).  Errors (with `rej`, may be NULL, filled and
 * *out untouched): MALFORMED (MCF_EPROTO), UNKNOWN_TYPE (MCF_EUNSUPP),
 * UNEXPECTED (MCF_EPROTO).  A VERSION_REJECT decodes whatever major the
 * frame had. */
int mcf_proto_msg_decode(int type, int minor, const void *payload, size_t len,
    enum mcf_proto_peer from, mcf_proto_msg **out, mcf_proto_reject *rej);

/* Frees a message returned by mcf_proto_msg_decode(); accepts NULL. */
void mcf_proto_msg_destroy(mcf_proto_msg *m);

#endif /* MCF_PROTO_MSG_H */
