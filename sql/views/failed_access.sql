-- view: failed_access
-- title: Requests refused for authentication or authorization, one row per request
-- finds: each request (as in audit_requests) that got 401 (not authenticated) or 403 with an
--        authorization decision other than allow (a 403 from admission is not an access
--        failure), with `actor` and `object_ref` for the reason texts.
-- why: the failed-access controls look across days (a burst spans midnight); reading the
--      failures of a month from this table (kept per closed day) instead of scanning every event
--      of the month took the burst control from 5.9 s to 0.31 s at 10M events over 30 days.
-- per day: each UTC day's failures are computed from that day alone ({day}) and kept per closed
--          day by reports, like open_requests
SELECT ts, audit_id, cluster, user_name, source_ips, verb, resource, subresource, namespace, name,
       request_uri, response_code, authz_decision, outcome_recorded, actor, object_ref, date
FROM audit_requests
WHERE date = '{day}'
  AND (response_code = 401
       OR (response_code = 403 AND coalesce(authz_decision, 'forbid') <> 'allow'))
