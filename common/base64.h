/*
 * base64.h — RFC 4648 base64, as Kubernetes uses it (Secret data,
 * certificate-authority-data in kubeconfigs, continue tokens).
 */
#ifndef MCF_COMMON_BASE64_H
#define MCF_COMMON_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Standard alphabet with padding.  New NUL-terminated string. */
char *mcf_base64_encode(const void *in, size_t len);

/* Decodes standard or URL-safe base64, padding optional, no whitespace.
 * On success `*out` is a new buffer (NUL-terminated for convenience) of
 * `*outlen` bytes.  Returns false on any invalid character, misplaced
 * padding or impossible length. */
bool mcf_base64_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen);

/* True when `s` is valid padded standard base64 (what Secret data must
 * be). */
bool mcf_base64_valid(const char *s);

#endif /* MCF_COMMON_BASE64_H */
