-- control: CC7.2/off-hours-admin
-- framework: AICPA SOC 2 Trust Services Criteria CC7.2 (monitor system components for anomalies indicative of malicious acts)
-- title: Administrative activity outside business hours
-- finds: requests by people who are administrators (is_admin: admin_users, admin_groups,
--        break_glass_users; automation excluded) outside business_hours (days, start and end hour,
--        time zone), that change something (any verb but get/list/watch) or open an exec, attach,
--        port-forward or proxy session.
-- why: stolen administrator credentials are used when their owner is asleep; an off-hours change
--      without a ticket is either an incident response or an incident.
-- severity: medium
-- kind: finding
CREATE VIEW soc2_cc7_2_off_hours_admin AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('administrator ', user_name, ' ', verb, ' ', object_ref, ' at ', CAST(ts AS VARCHAR),
              ' (', business_local_time(ts), '), outside business hours', refused) AS reason
FROM audit_requests
WHERE is_admin(user_name, user_groups)
  AND NOT is_automation(user_name, user_groups)
  AND NOT in_business_hours(ts)
  AND (verb NOT IN ('get', 'list', 'watch')
       OR subresource IN ('exec', 'attach', 'portforward', 'proxy'));
