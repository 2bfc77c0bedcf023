-- control: event-deletion
-- framework: Detection (anti-forensics: deletion of Kubernetes Events)
-- title: Kubernetes Events deleted
-- finds: successful delete and deletecollection of Events (core v1 and events.k8s.io) by anyone but
--        the control plane (the namespace controller removes them with their namespace).
-- why: Events expire on their own; deleting them is how an intruder erases the trace of failed Pods,
--      pulled images and scheduling of what they ran.
-- severity: high
-- kind: finding
CREATE VIEW det_event_deletion AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', object_ref) AS reason
FROM audit_requests
WHERE resource = 'events'
  AND verb IN ('delete', 'deletecollection')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND NOT scope_match('control_plane_users', user_name);
