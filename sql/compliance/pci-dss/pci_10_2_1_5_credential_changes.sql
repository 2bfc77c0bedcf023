-- control: 10.2.1.5
-- framework: PCI DSS v4.0 Requirement 10.2.1.5 (audit logs capture all changes to identification and authentication credentials, including elevation of privileges)
-- title: Changes to credentials and privileges
-- finds: create/update/patch/delete/deletecollection (not dry runs; refused attempts included and
--        marked) on Roles, ClusterRoles, RoleBindings and ClusterRoleBindings; on ServiceAccounts,
--        including TokenRequests (serviceaccounts/token) by anyone but the control plane (the kubelet
--        requests a token for every pod); on CertificateSigningRequests (new client certificates)
--        and their approval; on Secrets of type kubernetes.io/service-account-token (long-lived
--        tokens); and on the aws-auth ConfigMap in kube-system (EKS's IAM-to-Kubernetes identity map).
-- why: a new binding, token or certificate is a new or stronger credential; attackers persist and
--      escalate exactly this way.
-- severity: high
-- kind: evidence
CREATE VIEW pci_10_2_1_5_credential_changes AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref,
              CASE WHEN subresource = 'token' THEN ' (token issued)'
                   WHEN resource IN ('rolebindings', 'clusterrolebindings')
                        AND coalesce(json_get_str(request_object, 'roleRef', 'name'), '') <> ''
                   THEN ' (role ' || json_get_str(request_object, 'roleRef', 'name') || ')' END,
              refused) AS reason
FROM audit_requests
WHERE verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')
  AND NOT dry_run
  AND ((api_group = 'rbac.authorization.k8s.io'
        AND resource IN ('roles', 'clusterroles', 'rolebindings', 'clusterrolebindings'))
    OR (coalesce(api_group, '') = '' AND resource = 'serviceaccounts'
        AND NOT (subresource = 'token' AND scope_match('control_plane_users', user_name)))
    OR (api_group = 'certificates.k8s.io' AND resource = 'certificatesigningrequests'
        AND (verb IN ('create', 'delete', 'deletecollection') OR subresource = 'approval'))
    OR (coalesce(api_group, '') = '' AND resource = 'secrets'
        AND 'kubernetes.io/service-account-token' IN (json_get_str(request_object, 'type'),
                                                        json_get_str(response_object, 'type')))
    OR (coalesce(api_group, '') = '' AND resource = 'configmaps'
        AND namespace = 'kube-system' AND name = 'aws-auth'));
