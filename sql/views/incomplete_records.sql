-- view: incomplete_records
-- title: Requests whose record lacks a detail PCI DSS 10.2.2 requires
-- finds: the rows of audit_requests that lack a user (other than a 401, where no user was
--        authenticated), a source IP, the verb, the requestReceivedTimestamp (ts then came from a
--        fallback field), the response code, or the objectRef of a resource URI (/api/v1/...,
--        /apis/g/v/...); `missing` lists what is missing, comma-separated, in that order.
-- why: a record without who, when, what, on what and with which outcome cannot support an
--      investigation. PCI DSS 10.2.2 lists these rows; a report marks the evidence of every
--      evidence control that includes such a row as incomplete (a gap).
CREATE VIEW incomplete_records AS
SELECT * FROM (
  SELECT *,
         concat_ws(', ',
           CASE WHEN coalesce(user_name, '') = '' AND coalesce(response_code, 0) <> 401 THEN 'user identity' END,
           CASE WHEN coalesce(cardinality(source_ips), 0) = 0 THEN 'origination (source IP)' END,
           CASE WHEN coalesce(verb, '') = '' THEN 'type of event (verb)' END,
           CASE WHEN (shape_flags & 1) <> 0 AND json_get_str(unmapped, 'requestReceivedTimestamp') IS NULL
                THEN 'date and time (requestReceivedTimestamp)' END,
           CASE WHEN response_code IS NULL THEN 'success or failure (response code)' END,
           CASE WHEN resource IS NULL
                 AND (regexp_like(request_uri, '^/api/v1/[^?]+') OR regexp_like(request_uri, '^/apis/[^/?]+/[^/?]+/[^?]+'))
                THEN 'affected resource (objectRef)' END) AS missing
  FROM audit_requests
) r
WHERE missing <> '';
