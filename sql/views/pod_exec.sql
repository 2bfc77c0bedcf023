-- view: pod_exec
-- title: Who exec'd into Pods
-- finds: requests on the pods/exec subresource (kubectl exec: verb create over SPDY, get over WebSocket).
-- why: a shell in a running container bypasses image review and reaches its secrets and network.
CREATE VIEW pod_exec AS
SELECT ts, audit_id, stage, user_name, verb, name AS pod, namespace, response_code, request_uri, source_ips
FROM audit_events
WHERE resource = 'pods' AND subresource = 'exec';
