-- view: secret_access
-- title: Who touched Secrets
-- finds: every request on a Secret (get, list, watch, create, update, patch, delete), allowed or not.
-- why: Secrets hold credentials; reading them is the first step of most lateral movement. The seed's
--      "who accessed secrets in the last hour?" is `SELECT * FROM secret_access WHERE ts > now() - interval '1 hour'`.
CREATE VIEW secret_access AS
SELECT ts, audit_id, stage, user_name, verb, name AS secret, namespace, response_code, source_ips, user_agent
FROM audit_events
WHERE resource = 'secrets';
