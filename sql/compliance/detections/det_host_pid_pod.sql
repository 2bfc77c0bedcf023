-- control: host-pid-pod
-- framework: Detection (host namespaces; Falco and Elastic Kubernetes rule sets)
-- title: Pod sharing the host PID or IPC namespace
-- finds: successful create/update/patch of Pods and workload templates (workload_pod_specs: needs
--        the body, level Request or above) with spec.hostPID or spec.hostIPC true, by any identity; Pods created by controllers
--        from a flagged template are listed too (the running Pods).
-- why: with the host's process namespace a container can see and signal, and with privileges
--      enter, every process of the node (nsenter -t 1).
-- severity: high
-- kind: finding
CREATE VIEW det_host_pid_pod AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', kind_ref, ' ',
              coalesce(name, json_get_str(request_object, 'metadata', 'name'), json_get_str(request_object, 'metadata', 'generateName') || '*'),
              CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END, ' with ', concat_ws(', ', CASE WHEN host_pid THEN 'hostPID' END, CASE WHEN host_ipc THEN 'hostIPC' END)) AS reason
FROM workload_pod_specs
WHERE host_pid OR host_ipc;
