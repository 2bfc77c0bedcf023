-- control: 3.2.2/secret-bodies
-- framework: CIS Kubernetes Benchmark 3.2.2 (ensure that the audit policy covers key security concerns: Secrets, ConfigMaps and TokenReviews at Metadata level only)
-- title: Secrets, ConfigMaps or TokenReviews recorded with their bodies
-- finds: requests on secrets, configmaps or tokenreviews recorded at level Request or
--        RequestResponse: the audit policy wrote their contents to the audit log.
-- why: a Secret or TokenReview body in the audit log copies credentials (secret values, bearer
--      tokens) into every place the log goes. auditlake redacts Secret values on ingest, but the
--      API server's own log file and any other sink keep them. Fix the policy rule's level.
-- severity: high
-- kind: finding
CREATE VIEW cis_3_2_2_secret_bodies AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(resource, ' request recorded at level ', level, ': the audit log holds ',
              CASE resource WHEN 'secrets' THEN 'secret values'
                            WHEN 'tokenreviews' THEN 'bearer tokens'
                            ELSE 'configuration data' END,
              ' (', actor, ' ', verb, ' ', object_ref, ')') AS reason
FROM audit_requests
WHERE resource IN ('secrets', 'configmaps', 'tokenreviews')
  AND level IN ('Request', 'RequestResponse');
