-- control: anonymous-allowed
-- framework: Detection (after Falco k8saudit rule "Anonymous Request Allowed")
-- title: Anonymous request allowed
-- finds: requests by system:anonymous or system:unauthenticated that were allowed (code < 400),
--        except the health and version probes Kubernetes allows anonymously by default.
-- why: an allowed anonymous request means some binding grants unauthenticated clients access;
--      anyone who can reach the API server has it.
-- severity: high
-- kind: finding
CREATE VIEW det_anonymous_allowed AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('anonymous request allowed: ', verb, ' ', object_ref, ' from ',
              coalesce(source_ips[1], '(no source IP)'),
              CASE WHEN authz_reason <> '' THEN ' (' || authz_reason || ')' END) AS reason
FROM audit_requests
WHERE (user_name = 'system:anonymous' OR coalesce(array_has(user_groups, 'system:unauthenticated'), false))
  AND response_code < 400
  AND NOT (resource IS NULL AND regexp_like(request_uri, '^/(healthz|livez|readyz|version)([/?]|$)'));
