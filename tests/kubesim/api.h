/*
 * api.h — kubesim's request handler: routing (root, project prefixes,
 * /_sim/), discovery, OpenAPI, and the resource verbs over HTTP.
 *
 * ks_api_handle is the ks_httpd handler; it runs on the loop thread.
 */
#ifndef KS_API_H
#define KS_API_H

#include "httpd.h"
#include "sim.h"

/* ks_handler_fn for ks_httpd_config.handler; `arg` is the ks_sim. */
void ks_api_handle(void *arg, ks_conn *c, const ks_req *req);

#endif /* KS_API_H */
