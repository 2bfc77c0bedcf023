-- control: CC7.2/failed-access-bursts
-- framework: AICPA SOC 2 Trust Services Criteria CC7.2 (monitor system components for anomalies indicative of malicious acts)
-- title: Bursts of failed access by one identity
-- finds: failed requests (401, or 403 from authorization) that belong to a burst: at least
--        failed_access_burst_count (10) failures of the same identity within
--        failed_access_burst_minutes (5). The identity is the user name, or the first source IP for
--        401s (no user). Every failure of the burst is a row; the reason gives when it began.
-- why: one denial is a typo; ten in five minutes is a script enumerating permissions, a stolen
--      token being tried, or a broken deployment hammering the API, and each needs a look.
-- severity: high
-- kind: finding
-- evaluated: over the whole window, not per day: a burst of failures spans midnight
CREATE VIEW soc2_cc7_2_failed_access_bursts AS
WITH failed AS (
  SELECT *, row_number() OVER (PARTITION BY actor ORDER BY ts, audit_id) AS n
  FROM failed_access
),
-- A burst starts at failure s when failure s + count - 1 of the same identity is within the window.
starts AS (
  SELECT s.actor, s.n AS start_n, s.ts AS start_ts
  FROM failed s
  JOIN failed e ON e.actor = s.actor AND e.n = s.n + scope_int('failed_access_burst_count') - 1
  WHERE CAST(e.ts AS BIGINT) - CAST(s.ts AS BIGINT) <= scope_int('failed_access_burst_minutes') * 60000000
),
-- Each failure belongs to the latest burst that started at or before it, if it is within its count.
marked AS (
  SELECT f.*,
         max(st.start_n) OVER (PARTITION BY f.actor ORDER BY f.n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_start_n,
         max(st.start_ts) OVER (PARTITION BY f.actor ORDER BY f.n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_start_ts
  FROM failed f LEFT JOIN starts st ON st.actor = f.actor AND st.start_n = f.n
)
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('burst of failed access by ', actor, ' (at least ',
              CAST(scope_int('failed_access_burst_count') AS VARCHAR), ' failures within ',
              CAST(scope_int('failed_access_burst_minutes') AS VARCHAR), ' minutes, from ',
              CAST(last_start_ts AS VARCHAR), '): ', coalesce(verb, ''), ' ', coalesce(object_ref, ''),
              ' got ', CAST(response_code AS VARCHAR)) AS reason
FROM marked
WHERE last_start_n IS NOT NULL
  AND n - last_start_n < scope_int('failed_access_burst_count');
