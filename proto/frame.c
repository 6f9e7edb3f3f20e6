/*
 * frame.c — sealing and opening frames (layout and check order in
 * frame.h).
 *
 * The MAC covers the header and the payload, which sit next to each other
 * in the buffer, so one HMAC() call over the first 28 + n bytes computes
 * it.  On receipt the key whose one-byte id matches the header is tried
 * first and the other one second; the id is only a hint (it is covered by
 * the MAC but says nothing secret), so a frame signed by either key is
 * accepted whatever its id says.  Comparison is constant-time
 * (CRYPTO_memcmp) so timing tells a forger nothing about how many bytes of
 * a guessed MAC were right.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "alloc.h"
#include "version.h"

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t) (v >> 32));
	put_u32(p + 4, (uint32_t) v);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
	    | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t) get_u32(p) << 32 | get_u32(p + 4);
}

static void
mac(const mcf_proto_key *k, const uint8_t *data, size_t n,
    uint8_t out[MCF_PROTO_MAC_LEN])
{
	unsigned int len = 0;
	if (HMAC(EVP_sha256(), k->bytes, (int) k->len, data, n, out, &len)
	        == NULL
	    || len != MCF_PROTO_MAC_LEN)
		mcf_panic("proto frame: HMAC-SHA256 failed");
}

static size_t
bound(size_t max_frame)
{
	return max_frame == 0 ? MCF_PROTO_MAX_FRAME_DEFAULT : max_frame;
}

int
mcf_proto_frame_seal(const mcf_proto_hdr *hdr, const mcf_proto_keyset *ks,
    const void *payload, size_t len, size_t max_frame, uint8_t **out,
    size_t *out_len, mcf_errinfo *ei)
{
	size_t max = bound(max_frame);

	if (hdr == NULL || ks == NULL || out == NULL || out_len == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "missing argument");
	if (hdr->type == 0 || hdr->session == 0 || hdr->seq == 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "frame type, session and sequence number must not be 0");
	if (ks->current.len == 0)
		return mcf_errinfo_set(ei, MCF_EINVAL, "no current key");
	if (payload == NULL && len > 0)
		return mcf_errinfo_set(ei, MCF_EINVAL, "missing payload");
	if (len > max || MCF_PROTO_OVERHEAD > max - len || len > UINT32_MAX)
		return mcf_errinfo_set(ei, MCF_ETOOBIG,
		    "a frame with a %zu-byte payload exceeds the %zu-byte "
		    "frame limit",
		    len, max);

	size_t   n = MCF_PROTO_HDR_LEN + len;
	uint8_t *f = mcf_malloc(n + MCF_PROTO_MAC_LEN);
	memcpy(f, MCF_PROTO_MAGIC, 4);
	f[4] = hdr->major;
	f[5] = hdr->minor;
	f[6] = hdr->type;
	f[7] = ks->current.id;
	put_u64(f + 8, hdr->session);
	put_u64(f + 16, hdr->seq);
	put_u32(f + 24, (uint32_t) len);
	if (len > 0)
		memcpy(f + MCF_PROTO_HDR_LEN, payload, len);
	mac(&ks->current, f, n, f + n);
	*out     = f;
	*out_len = n + MCF_PROTO_MAC_LEN;
	return MCF_OK;
}

static void
parse_hdr(const uint8_t *p, mcf_proto_hdr *h)
{
	h->major       = p[4];
	h->minor       = p[5];
	h->type        = p[6];
	h->key_id      = p[7];
	h->session     = get_u64(p + 8);
	h->seq         = get_u64(p + 16);
	h->payload_len = get_u32(p + 24);
}

int
mcf_proto_frame_peek(const void *buf, size_t len, mcf_proto_hdr *out)
{
	const uint8_t *p = buf;
	if (buf == NULL || len < MCF_PROTO_HDR_LEN
	    || memcmp(p, MCF_PROTO_MAGIC, 4) != 0)
		return MCF_EPROTO;
	parse_hdr(p, out);
	return MCF_OK;
}

/* True when `k` signed the first `n` bytes of `p`, whose MAC follows. */
static bool
verify(const mcf_proto_key *k, const uint8_t *p, size_t n)
{
	uint8_t want[MCF_PROTO_MAC_LEN];
	if (k->len == 0)
		return false;
	mac(k, p, n, want);
	bool ok = CRYPTO_memcmp(want, p + n, MCF_PROTO_MAC_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int
mcf_proto_frame_open(const void *buf, size_t len, const mcf_proto_keyset *ks,
    mcf_proto_replay *rp, size_t max_frame, mcf_proto_frame *out,
    mcf_proto_reject *rej)
{
	const uint8_t *p   = buf;
	size_t         max = bound(max_frame);
	mcf_proto_hdr  h;

	mcf_proto_reject_clear(rej);
	if (len > max)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_TOO_BIG,
		    "frame of %zu bytes exceeds the %zu-byte limit", len, max);
	if (p == NULL || len < MCF_PROTO_OVERHEAD)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "frame of %zu bytes is shorter than the %d-byte minimum",
		    len, MCF_PROTO_OVERHEAD);
	if (memcmp(p, MCF_PROTO_MAGIC, 4) != 0)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "bad magic %02x%02x%02x%02x (want \"%s\")", p[0], p[1],
		    p[2], p[3], MCF_PROTO_MAGIC);
	parse_hdr(p, &h);
	if ((uint64_t) h.payload_len != len - MCF_PROTO_OVERHEAD)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "header says %u payload bytes, the frame holds %zu",
		    h.payload_len, len - MCF_PROTO_OVERHEAD);
	if (h.session == 0 || h.seq == 0 || h.type == 0)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "header has a zero %s",
		    h.session == 0   ? "session id"
		        : h.seq == 0 ? "sequence number"
		                     : "message type");

	size_t               n      = MCF_PROTO_HDR_LEN + h.payload_len;
	const mcf_proto_key *first  = &ks->current;
	const mcf_proto_key *second = &ks->previous;
	if (ks->previous.len > 0 && ks->previous.id == h.key_id
	    && ks->current.id != h.key_id) {
		first  = &ks->previous;
		second = &ks->current;
	}
	bool by_first  = verify(first, p, n);
	bool by_second = !by_first && verify(second, p, n);
	if (!by_first && !by_second) {
		if (ks->previous.len > 0)
			return mcf_proto_reject_set(rej,
			    MCF_PROTO_REJECT_BAD_AUTH,
			    "HMAC matches neither the current key (id %02x) "
			    "nor the previous key (id %02x); frame says key "
			    "id %02x, type %u, session %016llx",
			    ks->current.id, ks->previous.id, h.key_id, h.type,
			    (unsigned long long) h.session);
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_BAD_AUTH,
		    "HMAC does not match the current key (id %02x), the only "
		    "one configured; frame says key id %02x, type %u, "
		    "session %016llx",
		    ks->current.id, h.key_id, h.type,
		    (unsigned long long) h.session);
	}
	out->hdr         = h;
	out->payload     = p + MCF_PROTO_HDR_LEN;
	out->payload_len = h.payload_len;
	out->by_previous = (by_first ? first : second) == &ks->previous;

	if (rp != NULL) {
		uint64_t last = 0;
		if (mcf_proto_replay_check(rp, h.session, h.seq, &last)
		    != MCF_OK)
			return mcf_proto_reject_set(rej,
			    MCF_PROTO_REJECT_REPLAY,
			    "session %016llx: sequence number %llu is not "
			    "above %llu, the last accepted (type %u)",
			    (unsigned long long) h.session,
			    (unsigned long long) h.seq,
			    (unsigned long long) last, h.type);
	}
	if (h.major != MCF_PROTO_MAJOR)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_VERSION,
		    "peer speaks protocol %u.%u, this side %d.%d (type %u)",
		    h.major, h.minor, MCF_PROTO_MAJOR, MCF_PROTO_MINOR,
		    h.type);
	return MCF_OK;
}
