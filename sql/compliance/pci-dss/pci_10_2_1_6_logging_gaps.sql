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
-- How: every gap lies between two consecutive non-empty buckets of max_event_gap_minutes, and
-- event_buckets holds each day's buckets with their first and last event (kept per closed day):
-- a `lead` over a month's buckets, and not a read of the events at all (a `lead` over each
-- event took 8.6 s and 3.5 GB on 10M events; over buckets computed from the events, 0.94 s).
CREATE VIEW pci_10_2_1_6_logging_gaps AS
WITH silences AS (
  SELECT c, cluster, last_ts AS ts, last_id AS audit_id,
         lead(first_ts) OVER (PARTITION BY c ORDER BY b, first_ts) AS next_ts,
         lead(first_id) OVER (PARTITION BY c ORDER BY b, first_ts) AS next_audit_id
  FROM event_buckets
),
ends AS (
  SELECT * FROM silences
  WHERE next_ts IS NOT NULL
    AND CAST(next_ts AS BIGINT) - CAST(ts AS BIGINT) > scope_int('max_event_gap_minutes') * 60000000
),
last_events AS (
  SELECT c, cluster, max(last_ts) AS ts,
         last_value(last_id ORDER BY last_ts, last_id NULLS FIRST) AS audit_id
  FROM event_buckets GROUP BY c, cluster
),
newest AS (SELECT max(last_ts) AS newest FROM event_buckets),
stopped AS (
  SELECT l.c, l.cluster, l.ts, n.newest, l.audit_id
  FROM last_events l CROSS JOIN newest n
  WHERE CAST(n.newest AS BIGINT) - CAST(l.ts AS BIGINT) > scope_int('max_event_gap_minutes') * 60000000
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
