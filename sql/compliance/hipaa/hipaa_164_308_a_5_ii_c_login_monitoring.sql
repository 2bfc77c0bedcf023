-- control: 164.308(a)(5)(ii)(C)
-- framework: HIPAA Security Rule 45 CFR 164.308(a)(5)(ii)(C) (log-in monitoring)
-- title: Failed log-ins and use of stale or legacy credentials
-- finds: failed authentication (401: the API server rejected the credential; the reason carries
--        its message and the client's IP) and requests authenticated with a stale bound token
--        (annotation authentication.k8s.io/stale-token) or a legacy service-account token Secret
--        (authentication.k8s.io/legacy-token-*).
-- why: the rule asks for monitoring log-in attempts and reporting discrepancies; for the
--      Kubernetes API a log-in is the authentication of each request.
-- severity: medium
-- kind: evidence
CREATE VIEW hipaa_164_308_a_5_ii_c_login_monitoring AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       CASE WHEN response_code = 401
            THEN concat('failed log-in from ', coalesce(source_ips[1], '(no source IP)'),
                        CASE WHEN response_message <> '' THEN ': ' || response_message END)
            WHEN annotations LIKE '%"authentication.k8s.io/stale-token"%'
            THEN concat(actor, ' used a stale token: ', annotations->>'authentication.k8s.io/stale-token')
            ELSE concat(actor, ' used a legacy service-account token Secret')
       END AS reason
FROM audit_requests
WHERE response_code = 401
   OR annotations LIKE '%"authentication.k8s.io/stale-token"%'
   OR annotations LIKE '%"authentication.k8s.io/legacy-token%';
