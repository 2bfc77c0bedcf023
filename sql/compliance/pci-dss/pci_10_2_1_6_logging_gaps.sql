-- control: 10.2.1.6
-- framework: PCI DSS v4.0 Requirement 10.2.1.6 (audit logs capture initialization, stopping, or pausing of the audit logs)
-- title: Gaps in the audit event stream (audit logging stopped or paused)
-- finds: per cluster, each silence between two consecutive events longer than
--        max_event_gap_minutes (ts = the last event before the gap, audit_id its id, the reason
--        gives the length and the first event after it), and each cluster whose last event is more
--        than that before the newest event of the store (logging stopped and did not resume).
-- why: Kubernetes does not log "audit stopped"; a gap is the evidence. A live API server logs
--      leases and controller traffic every few seconds unless the policy drops them, so an hour of
--      silence means the API server, its audit backend or the shipping pipeline was down.
--      Note: a report's window filter on ts keeps gaps that start in the window.
-- severity: high
-- kind: finding
-- evaluated: over the whole window, not per day: a silence spans midnight, and the last event of a day is followed by the next day's first
-- How: events are counted into buckets of max_event_gap_minutes (two events of one bucket are
-- closer than the threshold, so every gap lies between two consecutive non-empty buckets): a
-- `lead` over a month's buckets instead of over each of its events (8.6 s and 3.5 GB on 10M
-- events); the events at the gap's two ends are then found by their time.
CREATE VIEW pci_10_2_1_6_logging_gaps AS
WITH buckets AS (
  SELECT coalesce(cluster, '') AS c, cluster,
         CAST(ts AS BIGINT) / greatest(scope_int('max_event_gap_minutes') * 60000000, 1) AS b,
         min(ts) AS first_ts, max(ts) AS last_ts
  FROM audit_events
  GROUP BY 1, 2, 3
),
silences AS (
  SELECT c, cluster, last_ts AS ts,
         lead(first_ts) OVER (PARTITION BY c ORDER BY b) AS next_ts
  FROM buckets
),
gaps AS (
  SELECT * FROM silences
  WHERE next_ts IS NOT NULL
    AND CAST(next_ts AS BIGINT) - CAST(ts AS BIGINT) > scope_int('max_event_gap_minutes') * 60000000
),
ends AS (
  -- The last event before each gap, the first after it (ties of time ordered by audit ID).
  SELECT g.c, g.cluster, g.ts, g.next_ts,
         max(CASE WHEN e.ts = g.ts THEN e.audit_id END) AS audit_id,
         min(CASE WHEN e.ts = g.next_ts THEN e.audit_id END) AS next_audit_id
  FROM gaps g JOIN audit_events e
    ON coalesce(e.cluster, '') = g.c AND (e.ts = g.ts OR e.ts = g.next_ts)
  GROUP BY g.c, g.cluster, g.ts, g.next_ts
),
last_events AS (
  SELECT c, cluster, max(last_ts) AS ts FROM buckets GROUP BY c, cluster
),
newest AS (SELECT max(last_ts) AS newest FROM buckets),
stopped AS (
  SELECT l.c, l.cluster, l.ts, n.newest, max(e.audit_id) AS audit_id
  FROM last_events l CROSS JOIN newest n
  JOIN audit_events e ON coalesce(e.cluster, '') = l.c AND e.ts = l.ts
  WHERE CAST(n.newest AS BIGINT) - CAST(l.ts AS BIGINT) > scope_int('max_event_gap_minutes') * 60000000
  GROUP BY l.c, l.cluster, l.ts, n.newest
)
SELECT ts, audit_id, cluster,
       CAST(NULL AS VARCHAR) AS user_name, CAST(NULL AS VARCHAR) AS verb,
       CAST(NULL AS VARCHAR) AS resource, CAST(NULL AS VARCHAR) AS subresource,
       CAST(NULL AS VARCHAR) AS namespace, CAST(NULL AS VARCHAR) AS name,
       CAST(NULL AS INT) AS response_code,
       concat('no audit events on cluster ', coalesce(cluster, '(none)'), ' for ',
              CAST(round((CAST(next_ts AS BIGINT) - CAST(ts AS BIGINT)) / 3600000000.0, 1) AS VARCHAR),
              ' hours, from ', CAST(ts AS VARCHAR), ' to ', CAST(next_ts AS VARCHAR),
              ' (next event ', next_audit_id, '); threshold ',
              CAST(scope_int('max_event_gap_minutes') AS VARCHAR), ' minutes') AS reason
FROM ends
UNION ALL
SELECT ts, audit_id, cluster,
       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS INT),
       concat('cluster ', coalesce(cluster, '(none)'), ' has no audit events after ', CAST(ts AS VARCHAR),
              ' while the store has events until ', CAST(newest AS VARCHAR), ' (',
              CAST(round((CAST(newest AS BIGINT) - CAST(ts AS BIGINT)) / 3600000000.0, 1) AS VARCHAR),
              ' hours): audit logging stopped') AS reason
FROM stopped;
