-- query: top_users_by_verb
-- title: Who does the most, and what? (people and service accounts apart)
SELECT CASE WHEN user_name LIKE 'system:serviceaccount:%' THEN 'service account'
            WHEN user_name LIKE 'system:%' THEN 'system'
            ELSE 'person' END AS kind,
       user_name, verb, count(*) AS requests
FROM audit_events
WHERE stage = 'ResponseComplete'
GROUP BY 1, 2, 3
ORDER BY requests DESC
LIMIT 25;
