-- control: 164.308(a)(4)
-- framework: HIPAA Security Rule 45 CFR 164.308(a)(4) (information access management)
-- title: Access to secrets and running workloads in ePHI namespaces
-- finds: reads of Secrets (get/list/watch) and exec, attach, port-forward and proxy requests on
--        Pods and Services in ephi_namespaces, allowed or refused, by anyone except the control
--        plane (control_plane_users: the kubelet mounting secrets, controllers) and the
--        namespace's own service accounts. A service account of another namespace is listed.
-- why: Secrets hold the database and API credentials that unlock ePHI, and a session in a Pod
--      reaches the data directly; access must be limited to what is authorized, and this shows
--      who actually had it.
-- severity: high
-- kind: evidence
-- requires: ephi_namespaces
CREATE VIEW hipaa_164_308_a_4_ephi_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref, ' (ePHI namespace)', refused) AS reason
FROM audit_requests
WHERE scope_match('ephi_namespaces', namespace)
  AND ((resource = 'secrets' AND verb IN ('get', 'list', 'watch'))
    OR (resource IN ('pods', 'services') AND subresource IN ('exec', 'attach', 'portforward', 'proxy')))
  AND NOT scope_match('control_plane_users', user_name)
  AND NOT starts_with(coalesce(user_name, ''), concat('system:serviceaccount:', namespace, ':'));
