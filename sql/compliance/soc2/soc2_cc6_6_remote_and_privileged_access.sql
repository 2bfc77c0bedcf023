-- control: CC6.6/CC6.8
-- framework: AICPA SOC 2 Trust Services Criteria CC6.6 (logical access from outside system boundaries) and CC6.8 (prevent or detect unauthorized or malicious software)
-- title: Interactive sessions into workloads by people, and privileged workloads
-- finds: allowed exec, attach, port-forward and proxy requests on Pods, Services and Nodes by people
--        (not automation_users/automation_groups), open sessions included (only their
--        ResponseStarted or RequestReceived recorded); and successful writes of Pods or workload
--        templates (see workload_pod_specs) that are privileged or use hostNetwork, hostPID,
--        hostIPC or hostPath, by anyone but the control plane (Pods the ReplicaSet controller
--        creates from a flagged template are the template's consequence; the template is listed).
-- why: a shell or tunnel into a container is a path around every network and deployment control;
--      a privileged or host-namespace Pod is root on the node. Both need a reason on record.
-- severity: high
-- kind: finding
CREATE VIEW soc2_cc6_6_remote_and_privileged_access AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('interactive ', subresource, ' by person ', user_name, ' into ', object_ref,
              CASE WHEN NOT outcome_recorded THEN ' (still open, or its end not recorded)' END) AS reason
FROM audit_requests
WHERE subresource IN ('exec', 'attach', 'portforward', 'proxy')
  AND resource IN ('pods', 'services', 'nodes')
  AND coalesce(response_code, 0) < 400
  AND coalesce(user_name, '') <> ''
  AND NOT is_automation(user_name, user_groups)
UNION ALL
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', kind_ref, ' ', coalesce(name, json_get_str(request_object, 'metadata', 'name')),
              CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END, ' with ',
              concat_ws(', ', CASE WHEN privileged THEN 'a privileged container' END,
                              CASE WHEN host_network THEN 'hostNetwork' END,
                              CASE WHEN host_pid THEN 'hostPID' END,
                              CASE WHEN host_ipc THEN 'hostIPC' END,
                              CASE WHEN host_path IS NOT NULL THEN 'hostPath ' || host_path END)) AS reason
FROM workload_pod_specs
WHERE (privileged OR host_network OR host_pid OR host_ipc OR host_path IS NOT NULL)
  AND NOT scope_match('control_plane_users', user_name);
