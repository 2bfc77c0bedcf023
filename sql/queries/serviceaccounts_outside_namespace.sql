-- query: serviceaccounts_outside_namespace
-- title: Service accounts acting outside their own namespace
-- why: a workload's identity reaching into other namespaces is either a controller (expected, list them)
--      or a stolen token.
SELECT split_part(user_name, ':', 3) AS sa_namespace, split_part(user_name, ':', 4) AS sa_name,
       namespace AS target_namespace, verb, resource, count(*) AS requests
FROM audit_events
WHERE user_name LIKE 'system:serviceaccount:%'
  AND namespace IS NOT NULL
  AND namespace <> split_part(user_name, ':', 3)
  AND split_part(user_name, ':', 3) NOT IN ('kube-system')
GROUP BY 1, 2, 3, 4, 5
ORDER BY requests DESC
LIMIT 50;
