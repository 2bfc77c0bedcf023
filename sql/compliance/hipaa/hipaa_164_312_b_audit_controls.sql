-- control: 164.312(b)
-- framework: HIPAA Security Rule 45 CFR 164.312(b) (audit controls: record and examine activity in systems that contain or use ePHI)
-- title: Failures of the audit recording itself
-- finds: the gaps of pci_10_2_1_6_logging_gaps (silences longer than max_event_gap_minutes, and
--        clusters that stopped logging), and events whose bodies the API server's truncate backend
--        dropped (annotation audit.k8s.io/truncated), so what was written is not on record.
-- why: audit controls are only a control while they record; a gap or a truncated record is a
--      period in which activity on ePHI systems cannot be examined.
-- severity: high
-- kind: finding
-- evaluated: over the whole window, not per day: it lists the gaps of pci_10_2_1_6_logging_gaps, and a day's last silence ends with a later day's first event
CREATE VIEW hipaa_164_312_b_audit_controls AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code, reason
FROM pci_10_2_1_6_logging_gaps
UNION ALL
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat('request body dropped by the audit truncate backend: ', actor, ' ', verb, ' ', object_ref) AS reason
FROM truncated_records;
