-- view: workload_pod_specs
-- title: Pod specifications written through the API, from Pods and from workload templates
-- finds: successful create/update/patch requests (not dry runs) recorded with their body (level
--        Request or RequestResponse) on Pods (and pods/ephemeralcontainers), Deployments,
--        ReplicaSets, StatefulSets, DaemonSets, ReplicationControllers, Jobs (spec.template.spec)
--        and CronJobs (spec.jobTemplate.spec.template.spec); `pod_spec` is that PodSpec as JSON
--        text, `containers_json` its containers, initContainers and ephemeralContainers, and the
--        flags the detections test: `privileged` (a container's securityContext.privileged is
--        true), `host_network`, `host_pid`, `host_ipc`, and `host_path` (the first hostPath volume's
--        path, NULL without one), plus `kind_ref` ("Deployment template" or "Pod") for reasons.
-- why: privileged, hostNetwork, hostPID and hostPath workloads are judged from the spec. A
--      Deployment's pods are created by the ReplicaSet controller; checking templates names the
--      person who asked for the workload. At Metadata level there is no body and nothing to check;
--      a JSON-patch (array) body has no spec and is not evaluated.
CREATE VIEW workload_pod_specs AS
SELECT c.*,
       regexp_like(containers_json, '"privileged"\s*:\s*true') AS privileged,
       coalesce(json_get_bool(pod_spec, 'hostNetwork'), false) AS host_network,
       coalesce(json_get_bool(pod_spec, 'hostPID'), false) AS host_pid,
       coalesce(json_get_bool(pod_spec, 'hostIPC'), false) AS host_ipc,
       CASE WHEN regexp_like(coalesce(json_get_json(pod_spec, 'volumes'), ''), '"hostPath"\s*:\s*\{')
            THEN coalesce(regexp_match(json_get_json(pod_spec, 'volumes'),
                                       '"hostPath"\s*:\s*\{[^}]*"path"\s*:\s*"([^"]*)"')[1], '(unknown path)')
       END AS host_path,
       CASE resource
         WHEN 'pods' THEN 'Pod'
         WHEN 'deployments' THEN 'Deployment template'
         WHEN 'replicasets' THEN 'ReplicaSet template'
         WHEN 'statefulsets' THEN 'StatefulSet template'
         WHEN 'daemonsets' THEN 'DaemonSet template'
         WHEN 'replicationcontrollers' THEN 'ReplicationController template'
         WHEN 'jobs' THEN 'Job template'
         WHEN 'cronjobs' THEN 'CronJob template'
       END AS kind_ref
FROM (
SELECT r.*,
       coalesce(json_get_json(pod_spec, 'containers'), '')
         || coalesce(json_get_json(pod_spec, 'initContainers'), '')
         || coalesce(json_get_json(pod_spec, 'ephemeralContainers'), '') AS containers_json
FROM (
  SELECT *,
         CASE
           WHEN resource = 'pods' THEN json_get_json(request_object, 'spec')
           WHEN resource = 'cronjobs' THEN json_get_json(request_object, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
           ELSE json_get_json(request_object, 'spec', 'template', 'spec')
         END AS pod_spec
  FROM audit_requests
  WHERE verb IN ('create', 'update', 'patch')
    AND response_code BETWEEN 200 AND 299
    AND NOT dry_run
    AND request_object IS NOT NULL
    AND ((resource = 'pods' AND coalesce(subresource, '') IN ('', 'ephemeralcontainers'))
      OR (resource IN ('deployments', 'replicasets', 'statefulsets', 'daemonsets',
                       'replicationcontrollers', 'jobs', 'cronjobs')
          AND coalesce(subresource, '') = ''))
) r
WHERE pod_spec IS NOT NULL
) c;
