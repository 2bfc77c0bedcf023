-- query: rbac_changes
-- title: Track RBAC modifications
-- seed: cat audit.log | jq 'select(.objectRef.apiGroup == "rbac.authorization.k8s.io" and .verb != "get" and .verb != "list" and .verb != "watch")'
SELECT ts, user_name, verb, resource, namespace, name, response_code
FROM rbac_changes
WHERE stage = 'ResponseComplete'
ORDER BY ts DESC
LIMIT 100;
