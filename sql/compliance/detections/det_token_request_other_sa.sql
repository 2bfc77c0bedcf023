-- control: token-request-other-sa
-- framework: Detection (TokenRequest abuse; Elastic Kubernetes rule set)
-- title: Token requested for another service account
-- finds: successful TokenRequests (create on serviceaccounts/token) where the requester is not the
--        service account itself (system:serviceaccount:<namespace>:<name>), excluding the control
--        plane (the kubelet requests projected tokens for every Pod).
-- why: minting a token for another identity is impersonation with a credential that outlives the
--      session; it is how a foothold becomes a more privileged service account.
-- severity: high
-- kind: finding
CREATE VIEW det_token_request_other_sa AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' obtained a token for service account ', namespace, '/', name) AS reason
FROM audit_requests
WHERE resource = 'serviceaccounts'
  AND subresource = 'token'
  AND verb = 'create'
  AND response_code BETWEEN 200 AND 299
  AND coalesce(user_name, '') <> concat('system:serviceaccount:', namespace, ':', name)
  AND NOT scope_match('control_plane_users', user_name);
