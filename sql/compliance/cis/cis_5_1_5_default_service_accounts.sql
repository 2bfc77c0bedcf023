-- control: 5.1.5
-- framework: CIS Kubernetes Benchmark 5.1.5 (ensure that default service accounts are not actively used)
-- title: Requests made by a namespace's default service account
-- finds: every request (allowed or refused) whose user is system:serviceaccount:<namespace>:default.
-- why: every Pod without an explicit service account runs as default; permissions granted to it go
--      to every such Pod, and a request by it shows a token that should not be mounted is used.
-- severity: medium
-- kind: finding
CREATE VIEW cis_5_1_5_default_service_accounts AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('default service account of namespace ', split_part(user_name, ':', 3), ' ', verb, ' ',
              object_ref, refused) AS reason
FROM audit_requests
WHERE user_name LIKE 'system:serviceaccount:%:default';
