-- control: CC6.1
-- framework: AICPA SOC 2 Trust Services Criteria CC6.1 (logical access security over protected information assets)
-- title: Access that bypasses individual, RBAC-checked identities
-- finds: allowed requests (code < 400) made without individual accountability: unauthenticated
--        requests (system:anonymous / system:unauthenticated) other than health and version probes;
--        requests made while impersonating another identity; resource requests by members of
--        system:masters other than the control plane (system:apiserver's loopback client is one
--        by design) — the authorizer is skipped for them: no RBAC, no revocation short of
--        rotating the CA; requests with long-lived legacy service-account token Secrets
--        (annotation authentication.k8s.io/legacy-token-*).
-- why: CC6.1 expects access to go through authenticated, individually attributable and centrally
--      revocable identities. Each of these is a way around that.
-- severity: high
-- kind: finding
CREATE VIEW soc2_cc6_1_logical_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       CASE WHEN (user_name = 'system:anonymous' OR coalesce(array_has(user_groups, 'system:unauthenticated'), false))
              THEN concat('unauthenticated request allowed: ', verb, ' ', object_ref)
            WHEN impersonated_user_name IS NOT NULL
              THEN concat(user_name, ' acted as ', impersonated_user_name, ': ', verb, ' ', object_ref)
            WHEN coalesce(array_has(user_groups, 'system:masters'), false)
              THEN concat(user_name, ' (system:masters, RBAC bypassed) ', verb, ' ', object_ref)
            ELSE concat(user_name, ' authenticated with a legacy service-account token Secret: ', verb, ' ', object_ref)
       END AS reason
FROM audit_requests
WHERE response_code < 400
  AND ((((user_name = 'system:anonymous' OR coalesce(array_has(user_groups, 'system:unauthenticated'), false))) AND NOT (resource IS NULL AND regexp_like(request_uri, '^/(healthz|livez|readyz|version)([/?]|$)')))
    OR impersonated_user_name IS NOT NULL
    OR (coalesce(array_has(user_groups, 'system:masters'), false) AND resource IS NOT NULL
        AND NOT scope_match('control_plane_users', user_name))
    OR annotations LIKE '%"authentication.k8s.io/legacy-token%');
