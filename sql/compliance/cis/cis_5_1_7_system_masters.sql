-- control: 5.1.7
-- framework: CIS Kubernetes Benchmark 5.1.7 (avoid use of system:masters group)
-- title: Requests by members of system:masters
-- finds: resource requests whose user (or impersonated user) is in the group system:masters,
--        except the control plane (control_plane_users: the API server's own loopback client,
--        system:apiserver, is in system:masters by design).
-- why: system:masters skips authorization entirely and cannot be revoked by RBAC; a certificate
--      carrying it is a permanent cluster-admin until the CA is rotated.
-- severity: high
-- kind: finding
CREATE VIEW cis_5_1_7_system_masters AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, CASE WHEN coalesce(array_has(user_groups, 'system:masters'), false) THEN ' (system:masters) '
                          ELSE concat(' impersonating ', impersonated_user_name, ' (system:masters) ') END,
              verb, ' ', object_ref, refused) AS reason
FROM audit_requests
WHERE resource IS NOT NULL
  AND NOT scope_match('control_plane_users', user_name)
  AND (coalesce(array_has(user_groups, 'system:masters'), false)
       OR coalesce(array_has(impersonated_user_groups, 'system:masters'), false));
