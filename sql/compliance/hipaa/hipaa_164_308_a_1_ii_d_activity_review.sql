-- control: 164.308(a)(1)(ii)(D)
-- framework: HIPAA Security Rule 45 CFR 164.308(a)(1)(ii)(D) (information system activity review)
-- title: Activity by people in ePHI namespaces, for regular review
-- finds: requests by people (not automation) in ephi_namespaces that change something (any verb
--        but get/list/watch), read Secrets or ConfigMaps, open exec/attach/port-forward/proxy
--        sessions or read container logs, or that were refused.
-- why: the rule requires regularly reviewing records of activity; this is the review list, the
--      human activity around ePHI workloads without the routine reads of dashboards and tools.
-- severity: medium
-- kind: evidence
-- requires: ephi_namespaces
CREATE VIEW hipaa_164_308_a_1_ii_d_activity_review AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('person ', user_name, ' ', verb, ' ', object_ref, ' (ePHI namespace)', refused) AS reason
FROM audit_requests
WHERE scope_match('ephi_namespaces', namespace)
  AND coalesce(user_name, '') <> ''
  AND NOT is_automation(user_name, user_groups)
  AND (verb NOT IN ('get', 'list', 'watch')
       OR resource IN ('secrets', 'configmaps')
       OR subresource IN ('exec', 'attach', 'portforward', 'proxy', 'log')
       OR response_code >= 400);
