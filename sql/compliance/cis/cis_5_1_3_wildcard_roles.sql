-- control: 5.1.3
-- framework: CIS Kubernetes Benchmark 5.1.3 (minimize wildcard use in Roles and ClusterRoles)
-- title: Roles and ClusterRoles written with wildcards
-- finds: successful create/update/patch (not dry runs) of Roles and ClusterRoles whose rules
--        use "*" in verbs, resources or apiGroups (the reason says where), except the API server
--        reconciling its bootstrap roles (cluster-admin is a wildcard by design). Needs the request
--        body (level Request or above for RBAC, as CIS 3.2.2 recommends).
-- why: a wildcard grants permissions that do not exist yet: every future resource, CRD and verb.
-- severity: medium
-- kind: finding
CREATE VIEW cis_5_1_3_wildcard_roles AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' with a wildcard in ',
              concat_ws(', ',
                CASE WHEN regexp_like(json_get_json(request_object, 'rules'), '"verbs"\s*:\s*\[[^\]]*"\*"') THEN 'verbs' END,
                CASE WHEN regexp_like(json_get_json(request_object, 'rules'), '"resources"\s*:\s*\[[^\]]*"\*"') THEN 'resources' END,
                CASE WHEN regexp_like(json_get_json(request_object, 'rules'), '"apiGroups"\s*:\s*\[[^\]]*"\*"') THEN 'apiGroups' END)) AS reason
FROM audit_requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND resource IN ('roles', 'clusterroles')
  AND verb IN ('create', 'update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND coalesce(user_name, '') <> 'system:apiserver'
  AND regexp_like(json_get_json(request_object, 'rules'), '"(verbs|resources|apiGroups)"\s*:\s*\[[^\]]*"\*"');
