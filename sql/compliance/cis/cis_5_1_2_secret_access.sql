-- control: 5.1.2
-- framework: CIS Kubernetes Benchmark 5.1.2 (minimize access to secrets)
-- title: Secrets read by identities other than the control plane
-- finds: allowed get, list and watch of Secrets by anyone but control_plane_users (the kubelet and
--        the controllers need them); list and watch across all namespaces are marked.
-- why: read access to Secrets is read access to every credential they hold; this shows which
--      identities actually use it, to cut the roles that grant it.
-- severity: medium
-- kind: finding
CREATE VIEW cis_5_1_2_secret_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref,
              CASE WHEN coalesce(namespace, '') = '' THEN ' across all namespaces' END) AS reason
FROM audit_requests
WHERE resource = 'secrets'
  AND verb IN ('get', 'list', 'watch')
  AND response_code < 400
  AND NOT scope_match('control_plane_users', user_name);
