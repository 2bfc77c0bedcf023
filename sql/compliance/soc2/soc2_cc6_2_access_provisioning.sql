-- control: CC6.2/CC6.3
-- framework: AICPA SOC 2 Trust Services Criteria CC6.2 (registration and authorization of new users) and CC6.3 (authorizing, modifying or removing access)
-- title: Provisioning, modification and removal of access
-- finds: successful create/update/patch/delete/deletecollection (not dry runs) of Roles,
--        ClusterRoles, RoleBindings, ClusterRoleBindings and ServiceAccounts; the reason says
--        whether access was provisioned, modified or removed and, for bindings, which role.
-- why: auditors sample these changes and match each to an approved access request; a removal
--      shows that leavers lose access.
-- severity: medium
-- kind: evidence
CREATE VIEW soc2_cc6_2_access_provisioning AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(CASE WHEN verb = 'create' THEN 'access provisioned: '
                   WHEN verb IN ('delete', 'deletecollection') THEN 'access removed: '
                   ELSE 'access modified: ' END,
              actor, ' ', verb, ' ', object_ref,
              CASE WHEN coalesce(json_get_str(request_object, 'roleRef', 'name'), '') <> ''
                   THEN ' (role ' || json_get_str(request_object, 'roleRef', 'name') || ')' END) AS reason
FROM audit_requests
WHERE verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND ((api_group = 'rbac.authorization.k8s.io'
        AND resource IN ('roles', 'clusterroles', 'rolebindings', 'clusterrolebindings'))
    OR (coalesce(api_group, '') = '' AND resource = 'serviceaccounts' AND coalesce(subresource, '') = ''));
