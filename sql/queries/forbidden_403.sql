-- query: forbidden_403
-- title: What 403 Forbidden events occurred, and who keeps hitting them?
-- seed: cat audit.log | jq 'select(.responseStatus.code == 403) | {user, verb, resource}'
SELECT user_name, verb, resource, namespace, count(*) AS denials, min(ts) AS first, max(ts) AS last
FROM forbidden_requests
GROUP BY user_name, verb, resource, namespace
ORDER BY denials DESC
LIMIT 50;
