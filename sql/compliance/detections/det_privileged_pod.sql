-- control: privileged-pod
-- framework: Detection (after Falco k8saudit rule "Create Privileged Pod")
-- title: Privileged container created
-- finds: successful create/update/patch of Pods and workload templates (workload_pod_specs: needs
--        the body, level Request or above) with a container, init container or ephemeral container whose
--        securityContext.privileged is true, by any identity; Pods created by controllers
--        from a flagged template are listed too (the running Pods).
-- why: a privileged container has every device and capability of the node: root on the host, and
--      from there every Pod and Secret scheduled on it.
-- severity: high
-- kind: finding
CREATE VIEW det_privileged_pod AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' ', kind_ref, ' ',
              coalesce(name, json_get_str(request_object, 'metadata', 'name'), json_get_str(request_object, 'metadata', 'generateName') || '*'),
              CASE WHEN namespace <> '' THEN ' in namespace ' || namespace END, ' with ', 'a privileged container') AS reason
FROM workload_pod_specs
WHERE privileged;
