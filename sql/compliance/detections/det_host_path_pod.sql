-- control: host-path-pod
-- framework: Detection (after Falco k8saudit rule "Create Sensitive Mount Pod", for any hostPath)
-- title: Pod mounting a hostPath volume
-- finds: successful create/update/patch of Pods and workload templates (workload_pod_specs: needs
--        the body, level Request or above) with a hostPath volume (the reason names the first path), by any identity; Pods created by controllers
--        from a flagged template are listed too (the running Pods).
-- why: a hostPath mount reads or writes the node's files: the kubelet credentials, the container
--      runtime socket, other Pods' volumes.
-- severity: high
-- kind: finding
CREATE VIEW det_host_path_pod AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', kind_ref, ' ',
              coalesce(name, json_get_str(request_object, 'metadata', 'name'), json_get_str(request_object, 'metadata', 'generateName') || '*'),
              CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END, ' with ', concat('hostPath ', host_path)) AS reason
FROM workload_pod_specs
WHERE host_path IS NOT NULL;
