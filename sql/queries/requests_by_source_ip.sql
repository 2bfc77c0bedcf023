-- query: requests_by_source_ip
-- title: Requests by source IP (first address: the client, or the first X-Forwarded-For hop)
SELECT source_ips[1] AS source_ip, count(*) AS requests, count(DISTINCT user_name) AS users,
       sum(CASE WHEN response_code IN (401, 403) THEN 1 ELSE 0 END) AS denied,
       min(ts) AS first, max(ts) AS last
FROM audit_events
GROUP BY 1
ORDER BY requests DESC
LIMIT 50;
