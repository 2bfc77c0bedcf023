-- view: audit_requests
-- title: One row per API request (the event that carries its outcome)
-- finds: the ResponseComplete or Panic event of each request, and the single ResponseStarted event
--        that failed authentication produces (401, no other stage); RequestReceived and the
--        ResponseStarted of long-running requests (watch, exec, port-forward) are left out, so a
--        request counts once. Adds `dry_run` (the request asked `dryRun=All`: nothing was persisted),
--        `actor` (the user name, or "unauthenticated client <first source IP>"), `object_ref` (the
--        object as "resource/subresource name in namespace", or the URI of a non-resource request)
--        and `refused` (" (refused: <code>)" for a response of 400 or more, else empty), for the
--        `reason` texts of the controls.
-- why: an audit policy without `omitStages` logs a request up to four times; counting or listing
--      evidence from audit_events directly double-counts. The compliance controls read this view.
--      A long-running request still in progress (an open exec session) appears once it completes.
CREATE VIEW audit_requests AS
SELECT *,
       coalesce(request_uri LIKE '%dryRun=%', false) AS dry_run,
       CASE WHEN coalesce(user_name, '') <> '' THEN user_name
            ELSE concat('unauthenticated client ', coalesce(source_ips[1], '(no source IP)')) END AS actor,
       CASE WHEN resource IS NULL THEN request_uri
            ELSE concat(resource,
                        CASE WHEN subresource <> '' THEN '/' || subresource END,
                        CASE WHEN name <> '' THEN ' ' || name END,
                        CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END) END AS object_ref,
       CASE WHEN response_code >= 400 THEN concat(' (refused: ', CAST(response_code AS VARCHAR), ')')
            ELSE '' END AS refused
FROM audit_events
WHERE stage IS NULL
   OR stage IN ('ResponseComplete', 'Panic')
   OR (stage = 'ResponseStarted' AND response_code = 401);
