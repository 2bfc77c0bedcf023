-- control: wildcard-clusterrole
-- framework: Detection (after Falco k8saudit rule "ClusterRole With Wildcard Created")
-- title: ClusterRole with wildcard verbs or resources
-- finds: successful create/update/patch (not dry runs) of ClusterRoles whose rules have "*" in
--        verbs or resources, except the API server reconciling its bootstrap roles.
-- why: a wildcard ClusterRole is cluster-admin in disguise, and grows with every CRD installed.
-- severity: medium
-- kind: finding
CREATE VIEW det_wildcard_clusterrole AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' with wildcard rules: ',
              json_get_json(request_object, 'rules')) AS reason
FROM audit_requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND resource = 'clusterroles'
  AND verb IN ('create', 'update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND coalesce(user_name, '') <> 'system:apiserver'
  AND regexp_like(json_get_json(request_object, 'rules'), '"(verbs|resources)"\s*:\s*\[[^\]]*"\*"');
