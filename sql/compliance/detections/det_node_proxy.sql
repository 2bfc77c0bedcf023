-- control: node-proxy
-- framework: Detection (nodes/proxy: the kubelet API through the API server)
-- title: Access to the kubelet API through nodes/proxy
-- finds: allowed requests on the nodes/proxy subresource by anyone but the control plane, with the
--        kubelet path in the reason (/exec, /run, /pods, /logs, ...).
-- why: nodes/proxy reaches the kubelet API, where /exec and /run execute commands in any Pod of the
--      node without a pods/exec audit event, and /logs reads the node's files.
-- severity: high
-- kind: finding
CREATE VIEW det_node_proxy AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', verb, ' nodes/proxy on node ', name, ': ', request_uri) AS reason
FROM audit_requests
WHERE resource = 'nodes'
  AND subresource = 'proxy'
  AND response_code < 400
  AND NOT scope_match('control_plane_users', user_name);
