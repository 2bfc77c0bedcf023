-- control: cluster-admin-binding
-- framework: Detection (after Falco k8saudit rule "Attach to cluster-admin Role")
-- title: Binding to the cluster-admin ClusterRole
-- finds: successful create/update/patch (not dry runs) of ClusterRoleBindings or RoleBindings whose
--        roleRef is cluster-admin (read from the request or response body: needs level Request or
--        above for RBAC).
-- why: binding cluster-admin hands out every permission in the cluster (or namespace) in one
--      object; it is the classic persistence and escalation step.
-- severity: high
-- kind: finding
CREATE VIEW det_cluster_admin_binding AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' binding cluster-admin to ',
              coalesce(json_get_json(request_object, 'subjects'), '(subjects not recorded)')) AS reason
FROM audit_requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND resource IN ('clusterrolebindings', 'rolebindings')
  AND verb IN ('create', 'update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND 'cluster-admin' IN (json_get_str(request_object, 'roleRef', 'name'), json_get_str(response_object, 'roleRef', 'name'));
