-- control: 5.1.1
-- framework: CIS Kubernetes Benchmark 5.1.1 (ensure that the cluster-admin role is only used where required)
-- title: Bindings to cluster-admin and requests authorized by it
-- finds: successful create/update/patch of RoleBindings and ClusterRoleBindings whose roleRef is
--        cluster-admin, and requests the RBAC authorizer allowed through cluster-admin (its
--        reason names ClusterRole "cluster-admin") by anyone but the control plane.
-- why: cluster-admin is every permission on every object; each binding and each identity using it
--      should be justified, and most uses show a narrower role would do.
-- severity: high
-- kind: finding
CREATE VIEW cis_5_1_1_cluster_admin AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' bound cluster-admin: ', verb, ' ', object_ref) AS reason
FROM audit_requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND resource IN ('clusterrolebindings', 'rolebindings')
  AND verb IN ('create', 'update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND 'cluster-admin' IN (json_get_str(request_object, 'roleRef', 'name'), json_get_str(response_object, 'roleRef', 'name'))
UNION ALL
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' used cluster-admin for ', verb, ' ', object_ref, ' (', authz_reason, ')') AS reason
FROM audit_requests
WHERE authz_decision = 'allow'
  AND authz_reason LIKE '%ClusterRole "cluster-admin"%'
  AND NOT scope_match('control_plane_users', user_name);
