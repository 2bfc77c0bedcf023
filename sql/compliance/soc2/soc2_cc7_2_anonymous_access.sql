-- control: CC7.2/anonymous-access
-- framework: AICPA SOC 2 Trust Services Criteria CC7.2 (monitor system components for anomalies indicative of malicious acts)
-- title: Anonymous requests beyond health probes
-- finds: requests by system:anonymous or the system:unauthenticated group, allowed or refused,
--        except GETs of /healthz, /livez, /readyz and /version (load balancers probe those and
--        Kubernetes allows them anonymously by default).
-- why: an unauthenticated client asking for anything else is scanning the API server, or using an
--      anonymous binding that someone created by mistake.
-- severity: high
-- kind: finding
CREATE VIEW soc2_cc7_2_anonymous_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('anonymous ', verb, ' ', object_ref, ' from ', coalesce(source_ips[1], '(no source IP)'),
              CASE WHEN response_code < 400 THEN ' (allowed)' ELSE refused END) AS reason
FROM audit_requests
WHERE (user_name = 'system:anonymous' OR coalesce(array_has(user_groups, 'system:unauthenticated'), false))
  AND NOT (resource IS NULL AND regexp_like(request_uri, '^/(healthz|livez|readyz|version)([/?]|$)'));
