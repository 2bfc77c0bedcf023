-- control: 10.2.2
-- framework: PCI DSS v4.0 Requirement 10.2.2 (audit logs record user identification, type of event, date and time, success or failure, origination, identity of affected data or resource)
-- title: Audit records missing required details
-- finds: requests whose record lacks a user (other than a 401, where no user was authenticated),
--        a source IP, the verb, the requestReceivedTimestamp (ts then came from a fallback field),
--        the response code, or the objectRef of a resource URI (/api/v1/..., /apis/g/v/...).
--        The reason lists what is missing.
-- why: a record without who, when, what, on what and with which outcome cannot support an
--      investigation; this shows a lossy shipper, an old API version or a proxy that strips data.
-- severity: medium
-- kind: finding
CREATE VIEW pci_10_2_2_missing_fields AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('record lacks ', missing, ': ', coalesce(request_uri, '(no URI)')) AS reason
FROM incomplete_records;
