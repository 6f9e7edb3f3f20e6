/*
 * protobuf.h — decoding the Kubernetes protobuf request bodies that
 * `kubectl create configmap|secret|namespace` send (KUBE_API.md §4.7).
 *
 * The body is the magic "k8s\0" and a runtime.Unknown {1: TypeMeta
 * {apiVersion, kind}, 2: raw object}.  Only ConfigMap, Secret and Namespace
 * objects are understood; gogo-protobuf's empty strings and zeros count as
 * unset.  The result is the JSON object a client would have sent.
 */
#ifndef KS_PROTOBUF_H
#define KS_PROTOBUF_H

#include <stddef.h>

#include <jansson.h>

/* Outcome of a decode. */
enum ks_pb_err {
	KS_PB_OK = 0,
	KS_PB_MALFORMED,   /* not a valid envelope or message → 400 */
	KS_PB_UNSUPPORTED, /* a kind other than the three → 415 */
};

/* Decodes `buf[0..len)` into a new JSON object in `*out`. */
int ks_pb_decode(const unsigned char *buf, size_t len, json_t **out,
    char *err, size_t errlen);

#endif /* KS_PROTOBUF_H */
