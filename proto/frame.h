/*
 * frame.h — the binary frame: fixed header, msgpack payload, HMAC-SHA256.
 *
 * One frame is one NNG message body.  Layout (all integers big-endian):
 *
 *   offset size field
 *        0    4 magic        "MCFP"
 *        4    1 major        the sender's protocol version
 *        5    1 minor
 *        6    1 type         message type (msg.h), 1..255
 *        7    1 key_id       mcf_proto_keys_id() of the signing key
 *        8    8 session      sender session id, random, never 0
 *       16    8 seq          sequence number in the session, from 1 up
 *       24    4 payload_len  bytes of msgpack payload that follow
 *       28    n payload      one msgpack map (msg.h)
 *     28+n   32 mac          HMAC-SHA256(key, bytes 0 .. 28+n-1)
 *
 * The header layout and the trailer are frozen for every protocol
 * version (version.h), so any peer can read who sent what before deciding
 * whether it understands the payload.
 *
 * Receiving (mcf_proto_frame_open) checks, in this order, and stops at the
 * first failure with the reason in parentheses:
 *   1. total size <= max_frame                        (TOO_BIG)
 *   2. header sanity: at least header + MAC long, magic, payload_len
 *      equal to what is left, session and seq not 0   (MALFORMED)
 *   3. HMAC against the key whose id matches key_id first, then the other
 *      of current/previous; constant-time compare     (BAD_AUTH)
 *   4. replay: seq above the last accepted for the session (REPLAY)
 *   5. major equal to ours                            (VERSION)
 * Decoding the payload (msg.h) comes after, in mcf_proto_conn_open().
 *
 * Thread model: pure functions apart from the replay tracker, which is
 * thread-safe; any thread.
 */
#ifndef MCF_PROTO_FRAME_H
#define MCF_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "keys.h"
#include "reject.h"
#include "replay.h"

#define MCF_PROTO_MAGIC "MCFP"
#define MCF_PROTO_HDR_LEN 28
#define MCF_PROTO_MAC_LEN 32
#define MCF_PROTO_OVERHEAD (MCF_PROTO_HDR_LEN + MCF_PROTO_MAC_LEN)
/* Default bound on a whole frame (header + payload + MAC). */
#define MCF_PROTO_MAX_FRAME_DEFAULT ((size_t) 4 * 1024 * 1024)
/* The smallest bound that may be configured. */
#define MCF_PROTO_MAX_FRAME_MIN ((size_t) 1024)

/* A frame header: a plain value type, fields public. */
typedef struct mcf_proto_hdr {
	uint8_t  major;
	uint8_t  minor;
	uint8_t  type;
	uint8_t  key_id;
	uint64_t session;
	uint64_t seq;
	uint32_t payload_len;
} mcf_proto_hdr;

/* An opened frame: header plus the payload, borrowed from the buffer given
 * to mcf_proto_frame_open() and valid as long as that buffer is.  A plain
 * value type. */
typedef struct mcf_proto_frame {
	mcf_proto_hdr  hdr;
	const uint8_t *payload;
	size_t         payload_len;
	bool           by_previous; /* verified with the previous key */
} mcf_proto_frame;

/* Builds a frame: writes `hdr`'s major, minor, type, session and seq (its
 * key_id and payload_len are ignored and filled in), `payload` (borrowed;
 * may be NULL when len is 0) and the MAC under `ks->current`.  `max_frame`
 * 0 means the default.  On success *out is new (free()) and *out_len its
 * size.  Errors: MCF_EINVAL (type 0, session 0, seq 0, no current key),
 * MCF_ETOOBIG (the frame would exceed max_frame), with a message in `ei`
 * (may be NULL).  Tests use it to build frames of other versions and
 * rogue frames; processes go through mcf_proto_conn_seal(). */
int mcf_proto_frame_seal(const mcf_proto_hdr *hdr, const mcf_proto_keyset *ks,
    const void *payload, size_t len, size_t max_frame, uint8_t **out,
    size_t *out_len, mcf_errinfo *ei);

/* Checks a received frame (`buf`, `len` borrowed) as listed above against
 * the keys `ks` and, when `rp` is not NULL, the replay tracker (which
 * then records the frame).  `max_frame` 0 means the default.  Returns
 * MCF_OK and fills `*out`.  On failure returns the reason's code and fills
 * `rej` (may be NULL); once the HMAC has verified (reasons REPLAY and
 * VERSION) `*out` is filled too, so a coordinator can answer a HELLO of
 * another major; otherwise `*out` is untouched.  Does not log or count:
 * mcf_proto_conn_open() does. */
int mcf_proto_frame_open(const void *buf, size_t len,
    const mcf_proto_keyset *ks, mcf_proto_replay *rp, size_t max_frame,
    mcf_proto_frame *out, mcf_proto_reject *rej);

/* Parses the header only, without any check beyond its length and magic
 * (for logs and tests: nothing in it is authentic).  MCF_EPROTO when `len`
 * is below MCF_PROTO_HDR_LEN or the magic is wrong. */
int mcf_proto_frame_peek(const void *buf, size_t len, mcf_proto_hdr *out);

#endif /* MCF_PROTO_FRAME_H */
