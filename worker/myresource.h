/*
 * myresource.h — the built-in MyResource controller (the pattern of the
 * Milo controller guide; ARCHITECTURE.md "Worker runtime").
 *
 * For each myresources.example.mcfleet.io/v1alpha1 object:
 *   - add the finalizer `example.mcfleet.io/cleanup`;
 *   - ensure a ConfigMap in its namespace named spec.configMapName, else
 *     the MyResource's own name, controlled by it, whose data equals
 *     spec.data; repair drift when the ConfigMap is edited or deleted; a
 *     ConfigMap of the previous configMapName that it controls is deleted;
 *   - set condition Ready (True, reason ReconcileSucceeded, or False with
 *     the reason of the failure) with observedGeneration, and
 *     status.observedGeneration and status.configMapName;
 *   - emit an Event for each create, update, repair and cleanup;
 *   - on deletion: delete the ConfigMap, then remove the finalizer.
 *
 * The CRD is deploy/crds/myresources.example.mcfleet.io.yaml.
 */
#ifndef MCF_WORKER_MYRESOURCE_H
#define MCF_WORKER_MYRESOURCE_H

#include "controller.h"

#define MCF_MYRESOURCE_FINALIZER "example.mcfleet.io/cleanup"

/* The controller's definition, for the worker's controller table. */
extern const mcf_ctrl_def mcf_myresource_controller;

/* The resources it names. */
extern const mcf_ctrl_gvr mcf_myresource_gvr;
extern const mcf_ctrl_gvr mcf_myresource_configmap_gvr;

#endif /* MCF_WORKER_MYRESOURCE_H */
