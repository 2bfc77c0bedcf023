-- control: 1.2.1
-- framework: CIS Kubernetes Benchmark 1.2.1 (ensure that the --anonymous-auth argument is set to false)
-- title: Anonymous authentication is enabled on the API server
-- finds: every request authenticated as system:anonymous (or in system:unauthenticated), health
--        probes included, allowed or refused: with --anonymous-auth=false such a request would be
--        a 401 with no user instead.
-- why: anonymous authentication lets anyone who reaches the API server be authorized as
--      system:anonymous; one careless binding then opens the cluster.
-- severity: high
-- kind: finding
CREATE VIEW cis_1_2_1_anonymous_auth AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('anonymous authentication is on: ', verb, ' ', object_ref, ' from ',
              coalesce(source_ips[1], '(no source IP)'), ' was authenticated as ', coalesce(user_name, 'system:anonymous')) AS reason
FROM audit_requests
WHERE (user_name = 'system:anonymous' OR coalesce(array_has(user_groups, 'system:unauthenticated'), false));
