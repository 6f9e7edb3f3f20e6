/*
 * milo.h — the simulated Milo project controller (KUBE_API.md §5.1, steps
 * 1–4 and the deletion sequence), enabled by --project-ready-after.
 *
 * After the delay, a new Project gets the finalizer
 * resourcemanager.miloapis.com/project-controller, a ProjectControlPlane of
 * the same name, a `default` namespace in its plane, Ready=True (reason
 * Ready) and its ProjectControlPlane ControlPlaneReady=True.  A Project
 * being deleted goes through ResourceCleanup (CleanupStarted,
 * CleanupAwaitingCompletion, CleanupComplete) while its plane is purged;
 * then the ProjectControlPlane is deleted and the finalizer removed, so the
 * Project disappears.  All writes go through the same pipeline as client
 * writes (ops.h), so watchers see ordinary events.
 */
#ifndef KS_MILO_H
#define KS_MILO_H

#include <stdint.h>

#include "sim.h"

/* Creates the controller and registers it as a store observer. */
ks_milo *ks_milo_create(ks_sim *s, int64_t ready_after_ms);

/* Cancels pending work and frees the controller. */
void ks_milo_destroy(ks_milo *m);

#endif /* KS_MILO_H */
