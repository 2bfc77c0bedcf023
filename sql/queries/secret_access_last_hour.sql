-- query: secret_access_last_hour
-- title: Who accessed Secrets in the last hour?
-- seed: cat audit.log | jq 'select(.objectRef.resource == "secrets" and .requestReceivedTimestamp > "…") | {user, verb, secret, ns}'
SELECT ts, user_name, verb, secret, namespace, response_code
FROM secret_access
WHERE ts > now() - INTERVAL '1 hour'
ORDER BY ts;
