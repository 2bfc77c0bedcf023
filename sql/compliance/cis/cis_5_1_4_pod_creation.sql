-- control: 5.1.4
-- framework: CIS Kubernetes Benchmark 5.1.4 (minimize access to create pods)
-- title: Pods created directly, not by a workload controller
-- finds: successful Pod creations (not dry runs) by anyone but the control plane: people and
--        service accounts creating Pods themselves rather than through a Deployment, Job or other
--        controller.
-- why: whoever can create a Pod can mount any Secret of its namespace and run as any of its
--      service accounts; the identities that use that right are the ones to review.
-- severity: low
-- kind: finding
CREATE VIEW cis_5_1_4_pod_creation AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' created ', object_ref, ' directly',
              CASE WHEN coalesce(name, '') = '' AND json_get_str(request_object, 'metadata', 'name') IS NOT NULL
                   THEN ' (' || json_get_str(request_object, 'metadata', 'name') || ')' END) AS reason
FROM audit_requests
WHERE resource = 'pods'
  AND coalesce(subresource, '') = ''
  AND verb = 'create'
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND NOT scope_match('control_plane_users', user_name);
