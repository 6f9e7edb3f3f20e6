"""Every Kubernetes API call the mcfleet binaries make in fleet mode: the
table the deploy checks derive RBAC from (tests/deploy/deploy_test.py).

One row is one (binary, plane, API group, resource, verbs).  `plane`:
  core-namespace  the core API, in the fleet's namespace (a Role)
  cluster         the core API, cluster-scoped (a ClusterRole)
  project         every project control plane (deploy/project-plane)
`mode` limits a row to one provider mode (the coordinator's `mode:`).
`names` (optional) narrows the row to objects named by a config key:
(config file, key, default).

The row is tied to the source in two ways, both checked:
  calls     (file, function) pairs: the file calls that Kubernetes client
            function (mcf_kc_get, ...; mcf_inf_config means an informer:
            list + watch).  The check scans every .c file of common/,
            coordinator/ and worker/ for these calls and for resource
            names; each call and each resource name it finds must be
            covered by a row citing that file, and each call a row cites
            must be there.  So a new call, or a call that went away,
            fails the check until this table follows.
  evidence  (file, regex) pairs that must match, for rights the code
            needs without calling them itself (myresources/finalizers).

Which binaries use a module of common/ is found from its entry point
(COMMON_ENTRY): a row citing common/X.c must exist for each binary whose
own folder calls X's entry point, and for no other.
"""

# The Kubernetes client functions and the verbs they use.
CLIENT_VERBS = {
    "mcf_kc_get": ["get"],
    "mcf_kc_list": ["list"],
    "mcf_kc_create_object": ["create"],
    "mcf_kc_update": ["update"],
    "mcf_kc_update_status": ["update"],     # on RESOURCE/status
    "mcf_kc_patch": ["patch"],
    "mcf_kc_delete": ["delete"],
    "mcf_kc_request": None,                 # raw: needs its own row
    "mcf_inf_config": ["list", "watch"],    # an informer
}

# Modules of common/ that call the API, and the function a binary calls to
# use them.  A common/ file with API calls that is missing here fails the
# check.
COMMON_ENTRY = {
    "common/leaderelect.c": "mcf_le_create",
    "common/meta.c": "mcf_meta_event_emit",
}

# The folders whose files belong to each binary (besides common/).
BINARY_DIRS = {"coordinator": "coordinator/", "worker": "worker/"}

COORD_CFG = "coordinator.yaml"
WORKER_CFG = "worker.yaml"

ROWS = [
    # ---- mcfleet-coordinator -------------------------------------------
    dict(binary="coordinator", plane="core-namespace",
         group="coordination.k8s.io", resource="leases",
         verbs=["get", "update"],
         names=(COORD_CFG, "lease-name", "mcfleet-coordinator"),
         calls=[("common/leaderelect.c", "mcf_kc_get"),
                ("common/leaderelect.c", "mcf_kc_update")],
         why="leader election: read and renew the coordinator Lease"),
    dict(binary="coordinator", plane="core-namespace",
         group="coordination.k8s.io", resource="leases",
         verbs=["create"],
         calls=[("common/leaderelect.c", "mcf_kc_create_object")],
         why="leader election: create the coordinator Lease when missing"),
    dict(binary="coordinator", plane="core-namespace",
         group="coordination.k8s.io", resource="leases",
         verbs=["list", "watch"],
         calls=[("coordinator/fleet.c", "mcf_inf_config")],
         why="membership: an informer on the namespace's Leases"),
    dict(binary="coordinator", plane="cluster", mode="external",
         group="resourcemanager.miloapis.com", resource="projects",
         verbs=["list", "watch"],
         calls=[("coordinator/fleet.c", "mcf_inf_config")],
         evidence=[("coordinator/provider.c", r'"resourcemanager\.miloapis\.com"'),
                   ("coordinator/provider.c", r'"projects"')],
         why="the Milo provider, external mode: an informer on Projects"),
    dict(binary="coordinator", plane="cluster", mode="internal",
         group="infrastructure.miloapis.com",
         resource="projectcontrolplanes", verbs=["list", "watch"],
         calls=[("coordinator/fleet.c", "mcf_inf_config")],
         evidence=[("coordinator/provider.c", r'"infrastructure\.miloapis\.com"'),
                   ("coordinator/provider.c", r'"projectcontrolplanes"')],
         why="the Milo provider, internal mode: an informer on "
             "ProjectControlPlanes"),

    # ---- mcfleet-worker, core API --------------------------------------
    dict(binary="worker", plane="core-namespace",
         group="coordination.k8s.io", resource="leases",
         verbs=["get", "create", "update"],
         calls=[("common/leaderelect.c", "mcf_kc_get"),
                ("common/leaderelect.c", "mcf_kc_create_object"),
                ("common/leaderelect.c", "mcf_kc_update")],
         why="its own Lease mcfleet-worker-NAME (names not known in "
             "advance: kubectl scale)"),
    dict(binary="worker", plane="core-namespace",
         group="coordination.k8s.io", resource="leases", verbs=["get"],
         calls=[("worker/fleet.c", "mcf_kc_get")],
         why="finding the leader: GET the coordinator Lease every second"),

    # ---- mcfleet-worker, project control planes --------------------------
    dict(binary="worker", plane="project",
         group="example.mcfleet.io", resource="myresources",
         verbs=["list", "watch"],
         calls=[("worker/controller.c", "mcf_inf_config")],
         evidence=[("worker/myresource.c", r'\.for_gvr\s*=\s*\{\s*"example\.mcfleet\.io"')],
         why="the MyResource controller's For: an informer"),
    dict(binary="worker", plane="project",
         group="example.mcfleet.io", resource="myresources",
         verbs=["patch"],
         calls=[("worker/myresource.c", "mcf_kc_patch")],
         why="add and remove the finalizer (merge patch)"),
    dict(binary="worker", plane="project",
         group="example.mcfleet.io", resource="myresources/status",
         verbs=["update"],
         calls=[("worker/myresource.c", "mcf_kc_update_status")],
         why="the Ready condition and status.configMapName"),
    dict(binary="worker", plane="project",
         group="example.mcfleet.io", resource="myresources/finalizers",
         verbs=["update"],
         evidence=[("common/meta.c", r'"blockOwnerDeletion"'),
                   ("worker/myresource.c", r"mcf_meta_controller_set\(")],
         why="owned ConfigMaps carry blockOwnerDeletion: the "
             "OwnerReferencesPermissionEnforcement admission plugin "
             "requires update on the owner's finalizers"),
    dict(binary="worker", plane="project",
         group="", resource="configmaps", verbs=["list", "watch"],
         calls=[("worker/controller.c", "mcf_inf_config")],
         evidence=[("worker/myresource.c", r'owns\[\]\s*=\s*\{\s*\{\s*"",\s*"v1",\s*"configmaps"')],
         why="the MyResource controller's Owns: an informer"),
    dict(binary="worker", plane="project",
         group="", resource="configmaps",
         verbs=["get", "create", "update", "delete"],
         calls=[("worker/myresource.c", "mcf_kc_get"),
                ("worker/myresource.c", "mcf_kc_create_object"),
                ("worker/myresource.c", "mcf_kc_update"),
                ("worker/myresource.c", "mcf_kc_delete")],
         why="the owned ConfigMap: ensure it, adopt-check it, delete it "
             "on cleanup"),
    dict(binary="worker", plane="project",
         group="", resource="events", verbs=["create"],
         calls=[("common/meta.c", "mcf_kc_create_object")],
         why="Events for what the controllers did"),
]
