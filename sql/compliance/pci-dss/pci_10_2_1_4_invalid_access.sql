-- control: 10.2.1.4
-- framework: PCI DSS v4.0 Requirement 10.2.1.4 (audit logs capture all invalid logical access attempts)
-- title: Invalid logical access attempts (401 and authorization 403)
-- finds: requests refused by authentication (401: bad, expired or missing credentials; the user is
--        then unknown and the source IP identifies the client) or by authorization (403 where the
--        authorizer did not allow: authz_decision forbid or absent). A 403 from admission (a policy
--        rejecting an allowed user's object) is not an access attempt and is left out.
-- why: repeated invalid attempts are how credential stuffing, stolen or revoked tokens and probing
--      for permissions show up.
-- severity: medium
-- kind: evidence
CREATE VIEW pci_10_2_1_4_invalid_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       CASE WHEN response_code = 401
            THEN concat('authentication failed for ', actor, ' on ', object_ref,
                        CASE WHEN response_message <> '' THEN ': ' || response_message END)
            ELSE concat(actor, ' denied ', verb, ' ', object_ref,
                        CASE WHEN authz_reason <> '' THEN ': ' || authz_reason END)
       END AS reason
FROM audit_requests
WHERE response_code = 401
   OR (response_code = 403 AND coalesce(authz_decision, 'forbid') <> 'allow');
