-- view: forbidden_requests
-- title: Requests denied by authorization (403)
-- finds: every event whose response code is 403 Forbidden.
-- why: repeated denials are how probing, stolen credentials and broken RBAC show up.
CREATE VIEW forbidden_requests AS
SELECT ts, audit_id, stage, user_name, verb, resource, subresource, namespace, name, request_uri,
       response_message, source_ips
FROM audit_events
WHERE response_code = 403;
