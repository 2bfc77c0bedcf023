-- query: impersonation
-- title: Requests made on behalf of another identity (kubectl --as)
SELECT ts, user_name AS real_user, impersonated_user_name AS acting_as, impersonated_user_groups AS acting_groups,
       verb, resource, namespace, name, response_code
FROM audit_events
WHERE impersonated_user_name IS NOT NULL
ORDER BY ts DESC
LIMIT 100;
