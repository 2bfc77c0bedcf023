-- control: 10.5.1
-- framework: PCI DSS v4.0 Requirement 10.5.1 (retain audit log history for at least 12 months, with at least the most recent three months immediately available for analysis)
-- title: Audit history retained shorter than required
-- finds: one row per cluster whose audit history in the store (oldest to newest event) spans fewer
--        than retention_days_kept days (365), with the span, the number of days that have events,
--        and the requirement in the reason; one row when the store holds no events at all. Every
--        event in an auditlake store is immediately queryable, so the 3-month requirement
--        (retention_days_queryable) is met whenever the span is; the reason states both.
-- why: an investigation of a breach found months later needs the logs of the time it began.
--      Measured on the data actually present, not on a configured retention flag.
-- severity: high
-- kind: finding
-- evaluated: over the whole window, not per day: the history of the whole store (oldest and newest event per cluster)
CREATE VIEW pci_10_5_1_retention AS
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
              ', events on ', CAST(days_with_events AS VARCHAR), ' days); required: ',
              CAST(scope_int('retention_days_kept') AS VARCHAR), ' days kept, the last ',
              CAST(scope_int('retention_days_queryable') AS VARCHAR), ' immediately queryable') AS reason
FROM span
WHERE CAST(newest AS BIGINT) - CAST(oldest AS BIGINT) < scope_int('retention_days_kept') * 86400000000
UNION ALL
-- The time is NULL unless the store is empty, never a constant: DataFusion 55 pushes a filter
-- that names no column (a report's window on `ts`, here `now()`) below the count, which then
-- counts nothing and claimed an empty store in every report over a past window.
SELECT CASE WHEN events = 0 THEN now() END, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       CAST(NULL AS INT), 'the store holds no audit events at all'
FROM total WHERE events = 0;
