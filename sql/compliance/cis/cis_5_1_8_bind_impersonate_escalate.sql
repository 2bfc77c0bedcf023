-- control: 5.1.8
-- framework: CIS Kubernetes Benchmark 5.1.8 (limit use of the Bind, Impersonate and Escalate permissions)
-- title: Roles granting bind, impersonate or escalate, and impersonation in use
-- finds: successful create/update/patch (not dry runs) of Roles and ClusterRoles whose rules name
--        the verbs bind, escalate or impersonate (wildcards are 5.1.3), and allowed requests made
--        with impersonation (impersonatedUser set).
-- why: bind and escalate let a subject grant permissions it does not hold; impersonate lets it act
--      as anyone, including system:masters. Each is a privilege-escalation path.
-- severity: high
-- kind: finding
CREATE VIEW cis_5_1_8_bind_impersonate_escalate AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' granting ',
              regexp_match(json_get_json(request_object, 'rules'), '"(bind|escalate|impersonate)"')[1]) AS reason
FROM audit_requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND resource IN ('roles', 'clusterroles')
  AND verb IN ('create', 'update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND regexp_like(json_get_json(request_object, 'rules'), '"verbs"\s*:\s*\[[^\]]*"(bind|escalate|impersonate)"')
UNION ALL
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(user_name, ' impersonated ', impersonated_user_name, ': ', verb, ' ', object_ref) AS reason
FROM audit_requests
WHERE impersonated_user_name IS NOT NULL
  AND response_code < 400;
