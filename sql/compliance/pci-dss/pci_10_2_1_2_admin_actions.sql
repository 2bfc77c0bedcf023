-- control: 10.2.1.2
-- framework: PCI DSS v4.0 Requirement 10.2.1.2 (audit logs capture all actions by any individual with administrative access)
-- title: Actions taken by administrative identities
-- finds: every resource request (reads included) and every non-read request made by an
--        administrator: a user in admin_users or break_glass_users, a member of admin_groups
--        (system:masters by default), or anyone impersonating such an identity.
-- why: administrative access can change or hide anything; PCI DSS asks that all of it, including
--      interactive use of shared or break-glass accounts, be logged and reviewable. Discovery GETs
--      (/api, /apis, /openapi) are left out: they are kubectl's bookkeeping, not actions.
-- severity: medium
-- kind: evidence
CREATE VIEW pci_10_2_1_2_admin_actions AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(CASE WHEN scope_match('break_glass_users', user_name) THEN 'break-glass account '
                   WHEN is_admin(user_name, user_groups) THEN 'administrator '
                   ELSE concat('impersonating administrator ', impersonated_user_name, ': ') END,
              user_name, ' ', verb, ' ', object_ref, refused) AS reason
FROM audit_requests
WHERE (is_admin(user_name, user_groups) OR is_admin(impersonated_user_name, impersonated_user_groups))
  AND NOT (resource IS NULL AND verb = 'get');
