-- control: CC8.1
-- framework: AICPA SOC 2 Trust Services Criteria CC8.1 (changes to infrastructure and software are authorized, tested, approved and implemented through change management)
-- title: Workload changes made by people rather than by automation
-- finds: successful create/update/patch/delete/deletecollection (not dry runs) of workloads and
--        their configuration (Deployments, StatefulSets, DaemonSets, ReplicaSets,
--        ReplicationControllers, Jobs, CronJobs, Pods, Services, Ingresses, ConfigMaps, Secrets,
--        NetworkPolicies, HorizontalPodAutoscalers; their scale subresource too) by people, i.e.
--        not automation_users/automation_groups (CI, GitOps controllers and the control plane).
-- why: where changes are meant to flow through a pipeline, a kubectl edit by a person bypasses
--      review and testing; each such row should map to an approved emergency change.
-- severity: medium
-- kind: finding
CREATE VIEW soc2_cc8_1_manual_changes AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('manual change by ', user_name, ': ', verb, ' ', object_ref,
              CASE WHEN user_agent <> '' THEN ' (' || split_part(user_agent, ' ', 1) || ')' END) AS reason
FROM audit_requests
WHERE verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND coalesce(subresource, '') IN ('', 'scale')
  AND resource IN ('deployments', 'statefulsets', 'daemonsets', 'replicasets', 'replicationcontrollers',
                   'jobs', 'cronjobs', 'pods', 'services', 'ingresses', 'configmaps', 'secrets',
                   'networkpolicies', 'horizontalpodautoscalers')
  AND coalesce(user_name, '') <> ''
  AND NOT is_automation(user_name, user_groups);
