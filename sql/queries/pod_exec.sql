-- query: pod_exec
-- title: Who exec'd into Pods?
-- seed: cat audit.log | jq 'select(.objectRef.resource == "pods" and .objectRef.subresource == "exec") | {user, pod, ns}'
SELECT ts, user_name, pod, namespace, response_code, request_uri
FROM pod_exec
WHERE stage <> 'ResponseComplete' OR response_code >= 400
ORDER BY ts DESC
LIMIT 100;
