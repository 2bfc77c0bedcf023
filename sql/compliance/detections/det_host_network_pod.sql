-- control: host-network-pod
-- framework: Detection (after Falco k8saudit rule "Create HostNetwork Pod")
-- title: Pod using the host network
-- finds: successful create/update/patch of Pods and workload templates (workload_pod_specs: needs
--        the body, level Request or above) with spec.hostNetwork true, by any identity; Pods created by controllers
--        from a flagged template are listed too (the running Pods).
-- why: the Pod sees the node's interfaces, can sniff its traffic and reach services bound to
--      localhost, such as the kubelet's.
-- severity: medium
-- kind: finding
CREATE VIEW det_host_network_pod AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', kind_ref, ' ',
              coalesce(name, json_get_str(request_object, 'metadata', 'name'), json_get_str(request_object, 'metadata', 'generateName') || '*'),
              CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END, ' with ', 'hostNetwork') AS reason
FROM workload_pod_specs
WHERE host_network;
