-- control: exec-attach
-- framework: Detection (after Falco k8saudit rule "Attach/Exec Pod")
-- title: Exec or attach into a container
-- finds: allowed pods/exec and pods/attach requests (kubectl exec is create over SPDY or get over
--        WebSocket) by any identity; the reason says whether it was a person or automation and
--        quotes the command from the request URI. A session still open (only its ResponseStarted
--        or RequestReceived recorded) is found too, and marked.
-- why: a shell in a running container bypasses image review and reaches its secrets, tokens and
--      network. Denied attempts are in the failed-access controls.
-- severity: medium
-- kind: finding
CREATE VIEW det_exec_attach AS
SELECT ts, audit_id, cluster, user_name, verb, resource, subresource, namespace, name, response_code,
       concat(CASE WHEN is_automation(user_name, user_groups) THEN 'automation identity ' ELSE 'person ' END,
              actor, ' ', subresource, ' into pod ', name, ' in namespace ', namespace,
              CASE WHEN strpos(request_uri, '?') > 0 THEN ': ' || split_part(request_uri, '?', 2) END,
              CASE WHEN NOT outcome_recorded THEN ' (still open, or its end not recorded)' END) AS reason
FROM audit_requests
WHERE resource = 'pods'
  AND subresource IN ('exec', 'attach')
  AND coalesce(response_code, 0) < 400;
