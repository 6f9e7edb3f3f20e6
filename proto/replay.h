/*
 * replay.h — replay protection: the highest sequence number accepted from
 * each sender session, in bounded memory.
 *
 * Every frame names its sender's session (a random 64-bit id a sender
 * draws for each connection) and a sequence number that the sender raises
 * by one for every frame of that session.  A receiver accepts an
 * authenticated frame only if its sequence number is above the last one
 * it accepted from that session, so a recorded frame replayed later, on
 * the same or any other connection, is refused.  Gaps are allowed (a
 * sender may drop a frame it could not send); going back is not.
 *
 * One tracker serves the whole receiving process, shared by all its
 * connections: a per-connection tracker would let a frame be replayed on a
 * new connection.  Only frames whose HMAC verified reach it, so only key
 * holders can create sessions in it.
 *
 * Memory is bounded: at most `capacity` sessions are remembered; when a
 * new session arrives at a full tracker the least recently used one is
 * forgotten (counted in mcf_proto_replay_evictions()).  Frames of a
 * forgotten session would be accepted again, so the capacity must exceed
 * the number of sessions a process sees while a recorded frame is still
 * worth replaying: the default, 16384, is hundreds of times the sessions a
 * coordinator sees in a day of normal restarts (one per worker connection
 * and one per coordinator connection on a worker).  TLS, when configured,
 * removes the exposure entirely.
 *
 * Thread model: any thread; one mutex `mtx` guards the table and is held
 * only for the lookup and update.
 */
#ifndef MCF_PROTO_REPLAY_H
#define MCF_PROTO_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MCF_PROTO_REPLAY_DEFAULT_CAPACITY 16384

typedef struct mcf_proto_replay mcf_proto_replay;

/* Creates an empty tracker remembering at most `capacity` sessions (0: the
 * default; at least 1).  About 40 bytes per session are allocated at
 * once.  *out is new (mcf_proto_replay_destroy). */
int mcf_proto_replay_create(mcf_proto_replay **out, size_t capacity);

/* Frees the tracker; accepts NULL.  No other thread may use it. */
void mcf_proto_replay_destroy(mcf_proto_replay *rp);

/* Accepts (session, seq) if seq is above the last sequence number
 * accepted from `session` (any seq >= 1 for a session not remembered),
 * recording it and returning MCF_OK.  Otherwise returns MCF_EPROTO and
 * changes nothing; `*last` (may be NULL) then receives the last accepted
 * sequence number.  seq 0 is never accepted.  Any thread. */
int mcf_proto_replay_check(
    mcf_proto_replay *rp, uint64_t session, uint64_t seq, uint64_t *last);

/* Number of sessions remembered now. */
size_t mcf_proto_replay_sessions(mcf_proto_replay *rp);

/* Number of sessions forgotten to make room since creation. */
uint64_t mcf_proto_replay_evictions(mcf_proto_replay *rp);

#endif /* MCF_PROTO_REPLAY_H */
