-- control: 10.2.1.7
-- framework: PCI DSS v4.0 Requirement 10.2.1.7 (audit logs capture all creation and deletion of system-level objects)
-- title: Creation and deletion of system-level objects
-- finds: successful create, delete and deletecollection (not dry runs) of cluster-scoped objects
--        (Namespaces, Nodes, ClusterRoles, ClusterRoleBindings, CRDs, webhook configurations,
--        APIServices, PersistentVolumes, StorageClasses, admission policies, ...) by anyone, and of
--        objects in system_namespaces (kube-system, ...) by anyone but the control plane.
--        Left out: access reviews (creating one is a question, not an object), Events, Leases,
--        Endpoints and EndpointSlices (bookkeeping), CertificateSigningRequests (10.2.1.5).
-- why: cluster-scoped objects and kube-system are the system layer: admission webhooks, CRDs and
--      API services change how the API behaves for everyone; attackers hide workloads in
--      kube-system.
-- severity: medium
-- kind: evidence
CREATE VIEW pci_10_2_1_7_system_objects AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(actor, ' ', CASE WHEN verb = 'create' THEN 'created' ELSE 'deleted' END, ' ', object_ref,
              CASE WHEN resource = 'namespaces' OR coalesce(namespace, '') = '' THEN ' (cluster-scoped)'
                   ELSE ' (system namespace)' END) AS reason
FROM audit_requests
WHERE verb IN ('create', 'delete', 'deletecollection')
  AND response_code BETWEEN 200 AND 299
  AND NOT dry_run
  AND resource IS NOT NULL
  AND resource NOT IN ('tokenreviews', 'subjectaccessreviews', 'selfsubjectaccessreviews',
                       'selfsubjectrulesreviews', 'selfsubjectreviews', 'localsubjectaccessreviews',
                       'events', 'leases', 'endpoints', 'endpointslices', 'certificatesigningrequests')
  AND (resource = 'namespaces'
       OR coalesce(namespace, '') = ''
       OR (scope_match('system_namespaces', namespace)
           AND NOT scope_match('control_plane_users', user_name)));
