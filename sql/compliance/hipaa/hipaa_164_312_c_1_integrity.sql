-- control: 164.312(c)(1)
-- framework: HIPAA Security Rule 45 CFR 164.312(c)(1) (integrity: protect ePHI from improper alteration or destruction)
-- title: Changes to workloads, data and configuration in ePHI namespaces
-- finds: successful create/update/patch/delete/deletecollection (not dry runs) in ephi_namespaces
--        of workloads (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods and
--        their ephemeral containers and scale), ConfigMaps, Secrets, PersistentVolumeClaims,
--        Services, and of the Namespace itself, by anyone but the control plane (CI included).
-- why: whoever changes the image, the volume or the configuration of an ePHI workload can alter
--      or destroy the data; each change should map to an authorized change.
-- severity: medium
-- kind: evidence
-- requires: ephi_namespaces
CREATE VIEW hipaa_164_312_c_1_integrity AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' (ePHI namespace)') AS reason
FROM audit_requests
WHERE scope_match('ephi_namespaces', namespace)
  AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND coalesce(subresource, '') IN ('', 'scale', 'ephemeralcontainers')
  AND resource IN ('deployments', 'statefulsets', 'daemonsets', 'replicasets', 'replicationcontrollers',
                   'jobs', 'cronjobs', 'pods', 'configmaps', 'secrets', 'persistentvolumeclaims',
                   'services', 'namespaces')
  AND NOT scope_match('control_plane_users', user_name);
