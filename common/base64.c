/*
 * base64.c — one encoder and one decoder for every place that needs them.
 */
#include "base64.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
mcf_base64_encode(const void *in, size_t n)
{
	const unsigned char *p   = in;
	char                *out = mcf_malloc(4 * ((n + 2) / 3) + 1);
	size_t               o   = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned) p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned) p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int
value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool
mcf_base64_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	size_t data = len;
	while (data > 0 && in[data - 1] == '=')
		data--;
	if (len - data > 2 || data % 4 == 1 ||
	    (len != data && len % 4 != 0))
		return false;
	unsigned char *buf  = mcf_malloc(data * 3 / 4 + 1);
	size_t         o    = 0;
	unsigned       acc  = 0;
	int            bits = 0;
	for (size_t i = 0; i < data; i++) {
		int v = value_of(in[i]);
		if (v < 0) {
			free(buf);
			return false;
		}
		acc = (acc << 6) | (unsigned) v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char) ((acc >> bits) & 0xff);
		}
	}
	buf[o]  = '\0';
	*out    = buf;
	*outlen = o;
	return true;
}

bool
mcf_base64_valid(const char *s)
{
	size_t n = strlen(s);
	if (n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '=') {
			/* Padding only at the end, at most two. */
			if (i < n - 2 || (i == n - 2 && s[n - 1] != '='))
				return false;
			continue;
		}
		if (value_of(c) < 0 || c == '-' || c == '_')
			return false;
	}
	return true;
}
