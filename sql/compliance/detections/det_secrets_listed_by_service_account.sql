-- control: secrets-listed-by-sa
-- framework: Detection (secret harvesting; Falco and Elastic Kubernetes rule sets)
-- title: Secrets listed or watched by a service account
-- finds: allowed list and watch of Secrets by service accounts (system:serviceaccount:*) other
--        than the control plane's.
-- why: listing Secrets returns their values; a workload's token doing it is how a compromised
--      Pod harvests credentials (and how over-broad operators leak them).
-- severity: high
-- kind: finding
CREATE VIEW det_secrets_listed_by_service_account AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('service account ', user_name, ' ', verb, ' ', object_ref,
              CASE WHEN coalesce(namespace, '') = '' THEN ' across all namespaces' END) AS reason
FROM audit_requests
WHERE resource = 'secrets'
  AND verb IN ('list', 'watch')
  AND response_code < 400
  AND user_name LIKE 'system:serviceaccount:%'
  AND NOT scope_match('control_plane_users', user_name);
