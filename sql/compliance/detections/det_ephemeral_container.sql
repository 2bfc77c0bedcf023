-- control: ephemeral-container
-- framework: Detection (after Falco k8saudit rule "EphemeralContainers Created")
-- title: Ephemeral container added to a running Pod
-- finds: successful update/patch of pods/ephemeralcontainers (kubectl debug), with the image when
--        the body was recorded.
-- why: an ephemeral container runs any image inside an existing Pod, sharing its namespaces and
--      service account, without a new Pod being created.
-- severity: medium
-- kind: finding
CREATE VIEW det_ephemeral_container AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' added an ephemeral container to pod ', name, ' in namespace ', namespace,
              CASE WHEN regexp_match(json_get_json(request_object, 'spec', 'ephemeralContainers'), '"image"\s*:\s*"([^"]*)"')[1] IS NOT NULL
                   THEN ' (image ' || regexp_match(json_get_json(request_object, 'spec', 'ephemeralContainers'), '"image"\s*:\s*"([^"]*)"')[1] || ')' END) AS reason
FROM audit_requests
WHERE resource = 'pods'
  AND subresource = 'ephemeralcontainers'
  AND verb IN ('update', 'patch')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run;
