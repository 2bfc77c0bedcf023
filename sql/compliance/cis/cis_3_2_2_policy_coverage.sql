-- control: 3.2.2/coverage
-- framework: CIS Kubernetes Benchmark 3.2.2 (ensure that the audit policy covers key security concerns)
-- title: Security-relevant request kinds the recorded events never show
-- finds: one row for each kind of request CIS 3.2.2 names of which the store holds no event at
--        all: Secret access, pods/exec, pods/portforward, pods/proxy or services/proxy, RBAC
--        changes, Pod changes. ts is the newest event of the store.
-- why: a kind that never appears in weeks of history is either never used or dropped by the audit
--      policy (level None, or a rule ordering mistake); an auditor needs to know which. Evidence
--      from data can show a gap in coverage, not prove coverage: confirm against the policy file.
-- severity: medium
-- kind: finding
-- evaluated: over the whole window, not per day: counts over the whole store
CREATE VIEW cis_3_2_2_policy_coverage AS
WITH c AS (
  SELECT max(newest) AS newest, sum(events) AS total, sum(secrets) AS secrets, sum(exec) AS exec,
         sum(portforward) AS portforward, sum(proxy) AS proxy, sum(rbac) AS rbac,
         sum(pod_changes) AS pod_changes
  FROM events_by_day
),
kinds AS (
  SELECT newest, total, 'Secret access' AS kind, secrets AS events FROM c
  UNION ALL SELECT newest, total, 'pods/exec', exec FROM c
  UNION ALL SELECT newest, total, 'pods/portforward', portforward FROM c
  UNION ALL SELECT newest, total, 'pods/proxy or services/proxy', proxy FROM c
  UNION ALL SELECT newest, total, 'RBAC changes', rbac FROM c
  UNION ALL SELECT newest, total, 'Pod changes', pod_changes FROM c
)
SELECT newest AS ts, CAST(NULL AS VARCHAR) AS audit_id, CAST(NULL AS VARCHAR) AS cluster,
       CAST(NULL AS VARCHAR) AS user_name, CAST(NULL AS VARCHAR) AS verb,
       CAST(NULL AS VARCHAR) AS resource, CAST(NULL AS VARCHAR) AS subresource,
       CAST(NULL AS VARCHAR) AS namespace, CAST(NULL AS VARCHAR) AS name,
       CAST(NULL AS INT) AS response_code,
       concat('no ', kind, ' events among the ', CAST(total AS VARCHAR),
              ' events of the store: unused, or not covered by the audit policy') AS reason
FROM kinds
WHERE events = 0 AND total > 0;
