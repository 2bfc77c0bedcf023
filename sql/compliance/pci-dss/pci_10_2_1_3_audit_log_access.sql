-- control: 10.2.1.3
-- framework: PCI DSS v4.0 Requirement 10.2.1.3 (audit logs capture all access to audit logs)
-- title: Access to the audit logs and the audit pipeline
-- finds: requests on objects in audit_log_namespaces (where the log shipper or auditlake's
--        receiver runs) by anyone but that namespace's own service accounts and the control plane;
--        reads of kubelet log files through nodes/proxy (.../proxy/logs/..., which on a control-plane
--        node include the API server's audit log); reads of the API server's /logs endpoint; reads
--        of the kube-apiserver Pod's logs (where audit logs go when --audit-log-path=-).
-- why: whoever can read the audit trail learns what is watched, and whoever can touch the pipeline
--      can blind it. PCI DSS asks that access to the logs is itself logged.
-- severity: high
-- kind: evidence
CREATE VIEW pci_10_2_1_3_audit_log_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref,
              CASE WHEN scope_match('audit_log_namespaces', namespace) THEN ' (audit pipeline namespace)'
                   ELSE ' (audit log files)' END, refused) AS reason
FROM audit_requests
WHERE (scope_match('audit_log_namespaces', namespace)
       AND NOT starts_with(coalesce(user_name, ''), concat('system:serviceaccount:', namespace, ':'))
       AND NOT scope_match('control_plane_users', user_name))
   OR (resource = 'nodes' AND subresource = 'proxy' AND request_uri LIKE '%/proxy/logs%')
   OR (resource IS NULL AND regexp_like(request_uri, '^/logs([/?]|$)'))
   OR (resource = 'pods' AND subresource = 'log' AND namespace = 'kube-system'
       AND starts_with(name, 'kube-apiserver'));
