-- view: rbac_changes
-- title: RBAC modifications
-- finds: every request on rbac.authorization.k8s.io objects other than get, list and watch.
-- why: roles and bindings decide who can do what; a change to them is a change of privileges.
CREATE VIEW rbac_changes AS
SELECT ts, audit_id, stage, user_name, verb, resource, namespace, name, response_code, request_object
FROM audit_events
WHERE api_group = 'rbac.authorization.k8s.io'
  AND (verb IS NULL OR verb NOT IN ('get', 'list', 'watch'));
