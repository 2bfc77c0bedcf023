-- control: 10.2.1.1
-- framework: PCI DSS v4.0 Requirement 10.2.1.1 (audit logs capture all individual user access to cardholder data)
-- title: Individual user access to the cardholder data environment
-- finds: every request by a person (not an identity matching automation_users/automation_groups)
--        on any object in a namespace of cde_namespaces, reads and writes, allowed or refused.
-- why: PCI DSS wants each access to cardholder data traceable to one person. In Kubernetes the data
--      is reached through the CDE's Secrets, ConfigMaps, exec/attach/port-forward sessions, logs
--      and workloads; this is the list an assessor samples.
-- severity: medium
-- kind: evidence
-- requires: cde_namespaces
CREATE VIEW pci_10_2_1_1_cde_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('person ', user_name, ' ', verb, ' ', object_ref, ' (CDE namespace)', refused) AS reason
FROM audit_requests
WHERE scope_match('cde_namespaces', namespace)
  AND coalesce(user_name, '') <> ''
  AND NOT is_automation(user_name, user_groups);
