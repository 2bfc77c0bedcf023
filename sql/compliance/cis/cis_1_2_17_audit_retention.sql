-- control: 1.2.17
-- framework: CIS Kubernetes Benchmark 1.2.16/1.2.17 (--audit-log-path set; --audit-log-maxage 30 or as appropriate), judged from the data present
-- title: Audit logging on and at least 30 days of history present
-- finds: one row per cluster whose audit history in the store spans fewer than
--        cis_min_retention_days (30), and one row when the store holds no events (logging off).
-- why: without audit logs there is no record of who did what; fewer than 30 days leaves most
--      incidents, found weeks later, without evidence. (Numbering of CIS v1.9/v1.10; older
--      versions number these checks differently.)
-- severity: medium
-- kind: finding
-- evaluated: over the whole window, not per day: the history of the whole store (oldest and newest event per cluster)
CREATE VIEW cis_1_2_17_audit_retention AS
WITH span AS (
  SELECT cluster, min(oldest) AS oldest, max(newest) AS newest, count(DISTINCT date) AS days_with_events
  FROM events_by_day GROUP BY cluster
),
total AS (SELECT count(*) AS events FROM audit_events)
SELECT newest AS ts, CAST(NULL AS VARCHAR) AS audit_id, cluster,
       CAST(NULL AS VARCHAR) AS user_name, CAST(NULL AS VARCHAR) AS verb,
       CAST(NULL AS VARCHAR) AS resource, CAST(NULL AS VARCHAR) AS subresource,
       CAST(NULL AS VARCHAR) AS namespace, CAST(NULL AS VARCHAR) AS name,
       CAST(NULL AS INT) AS response_code,
       concat('cluster ', coalesce(cluster, '(none)'), ' has ',
              CAST(round((CAST(newest AS BIGINT) - CAST(oldest AS BIGINT)) / 86400000000.0, 1) AS VARCHAR),
              ' days of audit history (', CAST(oldest AS VARCHAR), ' to ', CAST(newest AS VARCHAR),
              ', events on ', CAST(days_with_events AS VARCHAR), ' days); CIS asks for at least ',
              CAST(scope_int('cis_min_retention_days') AS VARCHAR), ' days') AS reason
FROM span
WHERE CAST(newest AS BIGINT) - CAST(oldest AS BIGINT) < scope_int('cis_min_retention_days') * 86400000000
UNION ALL
-- The time is NULL unless the store is empty, never a constant: DataFusion 55 pushes a filter
-- that names no column (a report's window on `ts`, here `now()`) below the count, which then
-- counts nothing and claimed an empty store in every report over a past window.
SELECT CASE WHEN events = 0 THEN now() END, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       CAST(NULL AS INT), 'the store holds no audit events: audit logging is off or not shipped'
FROM total WHERE events = 0;
