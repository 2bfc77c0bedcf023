-- query: anonymous_requests
-- title: Anonymous and unauthenticated requests
-- why: `system:anonymous` that gets anything but 401/403 means anonymous auth is on and bound to a role.
SELECT ts, coalesce(user_name, '(no user: authentication failed)') AS user_name, verb, request_uri,
       response_code, response_message, source_ips, user_agent
FROM audit_events
WHERE user_name = 'system:anonymous' OR user_name IS NULL OR array_has(user_groups, 'system:unauthenticated')
ORDER BY ts DESC
LIMIT 100;
