use super::*;

const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/p/pods","verb":"list","user":{"username":"jane","groups":["dev"]},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"p","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-19T10:30:00.000000Z","stageTimestamp":"2026-03-19T10:30:00.050000Z"}"#;

/// Every row and every error out of one text.
fn decode(text: &str, format: Format) -> (Vec<EventRow<'static>>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let res = decode_input(
        text,
        format,
        &DecodeOptions::default(),
        &mut |_, _, r| match r {
            Ok(row) => rows.push(owned(row)),
            Err(e) => errors.push(e.to_string()),
        },
    );
    if let Err(e) = res {
        errors.push(e.to_string());
    }
    (rows, errors)
}

fn owned(r: EventRow<'_>) -> EventRow<'static> {
    let o = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
    EventRow {
        audit_id: o(r.audit_id),
        stage: o(r.stage),
        verb: o(r.verb),
        user_name: o(r.user_name),
        request_uri: o(r.request_uri),
        resource: o(r.resource),
        subresource: o(r.subresource),
        namespace: o(r.namespace),
        name: o(r.name),
        authz_decision: o(r.authz_decision),
        request_object: o(r.request_object),
        ts: r.ts,
        response_code: r.response_code,
        source_format: r.source_format,
        envelope: r.envelope,
        envelope_cluster: r.envelope_cluster,
        ..EventRow::default()
    }
}

fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[test]
fn native_events_stay_native_and_arrays_of_them_are_read() {
    let (rows, errors) = decode(EVENT, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows[0].source_format, Some("k8s"));
    assert!(rows[0].envelope.is_none());
    let (rows, errors) = decode(&format!("[{EVENT},{EVENT}]"), Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows.len(), 2);
    // Asked for EKS, a bare event is refused with what was expected.
    let (rows, errors) = decode(EVENT, Format::Eks);
    assert!(rows.is_empty());
    assert!(errors[0].contains("not an EKS envelope"), "{errors:?}");
}

#[test]
fn aks_records_with_string_and_object_logs_and_other_categories() {
    let rid = "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS";
    let as_string = format!(
        r#"{{"category":"kube-audit","resourceId":"{rid}","time":"t","properties":{{"log":{},"pod":"kube-apiserver-1","stream":"stdout"}}}}"#,
        quoted(&format!("{EVENT}\n"))
    );
    let as_object = format!(
        r#"{{"category":"kube-audit-admin","resourceId":"{rid}","properties":{{"log":{EVENT}}}}}"#
    );
    let guard = r#"{"category":"guard","resourceId":"x","properties":{"log":"some text"}}"#;
    let doc = format!(r#"{{"records":[{as_string},{as_object},{guard}]}}"#);
    let (rows, errors) = decode(&doc, Format::Auto);
    assert_eq!(rows.len(), 2);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains(r#"category "guard""#), "{errors:?}");
    for r in &rows {
        assert_eq!(r.source_format, Some("aks"));
        assert_eq!(r.envelope_cluster.as_deref(), Some("prod-aks"));
        assert_eq!(r.audit_id.as_deref(), Some("a1"));
    }
    // The envelope gives back the record, the log as the string it was (with its newline).
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let Rebuilt::Value(back) =
        rebuild_envelope(rows[0].envelope.as_deref().unwrap(), &event, None, None).unwrap()
    else {
        panic!("a line");
    };
    let log = back["properties"]["log"].as_str().unwrap();
    assert!(log.ends_with('\n'));
    assert_eq!(serde_json::from_str::<Value>(log).unwrap(), event);
    assert_eq!(back["properties"]["pod"], "kube-apiserver-1");
    let Rebuilt::Value(back) =
        rebuild_envelope(rows[1].envelope.as_deref().unwrap(), &event, None, None).unwrap()
    else {
        panic!("a line");
    };
    assert_eq!(back, serde_json::from_str::<Value>(&as_object).unwrap());
}

#[test]
fn eks_shapes_truncation_and_other_streams() {
    let msg = quoted(EVENT);
    let filter = format!(
        r#"{{"events":[{{"logStreamName":"kube-apiserver-audit-abc","timestamp":1,"message":{msg},"ingestionTime":2,"eventId":"e1"}}],"searchedLogStreams":[]}}"#
    );
    let (rows, errors) = decode(&filter, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows[0].source_format, Some("eks"));

    let data = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-abc","subscriptionFilters":["f"],"logEvents":[{{"id":"1","timestamp":1,"message":{msg}}},{{"id":"2","timestamp":1,"message":{}}}]}}"#,
        quoted(&format!("{}[Truncated...]", &EVENT[..100]))
    );
    let (rows, errors) = decode(&data, Format::Auto);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].envelope_cluster.as_deref(), Some("prod"));
    assert!(errors[0].contains("[Truncated...]"), "{errors:?}");

    let other = data.replace("kube-apiserver-audit-abc", "authenticator-abc");
    let (rows, errors) = decode(&other, Format::Auto);
    assert!(rows.is_empty());
    assert!(
        errors.iter().all(|e| e.contains("authenticator-abc")),
        "{errors:?}"
    );

    let line = format!("2026-03-19T10:30:00.123Z {EVENT}");
    let (rows, errors) = decode(&line, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    let event: Value = serde_json::from_str(EVENT).unwrap();
    assert_eq!(
        rebuild_envelope(rows[0].envelope.as_deref().unwrap(), &event, None, None).unwrap(),
        Rebuilt::Line(format!("2026-03-19T10:30:00.123Z {event}"))
    );

    // Firehose to an HTTP endpoint: base64 of the gzipped DATA_MESSAGE, and back.
    let b64 = encode_data(data.as_bytes(), true).unwrap();
    let firehose = format!(r#"{{"requestId":"r","timestamp":1,"records":[{{"data":"{b64}"}}]}}"#);
    let (rows, errors) = decode(&firehose, Format::Eks);
    assert_eq!((rows.len(), errors.len()), (1, 1), "{errors:?}");
    let Rebuilt::Value(back) =
        rebuild_envelope(rows[0].envelope.as_deref().unwrap(), &event, None, None).unwrap()
    else {
        panic!("a line");
    };
    let (inner, gz) = decode_data(
        back["records"][0]["data"].as_str().unwrap(),
        "data",
        MAX_DATA_BYTES,
    )
    .unwrap();
    assert!(gz);
    let inner: Value = serde_json::from_str(&inner).unwrap();
    assert_eq!(inner["logGroup"], "/aws/eks/prod/cluster");
    assert_eq!(inner["logEvents"].as_array().unwrap().len(), 1);

    // Firehose's S3 objects: documents back to back on one line.
    let (rows, _) = decode(&format!("{data}{data}"), Format::Auto);
    assert_eq!(rows.len(), 2);
}

#[test]
fn gke_entries_map_to_events_and_pubsub_is_unwrapped() {
    let entry = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"jane@example.com"},"authorizationInfo":[{"granted":false,"permission":"io.k8s.core.v1.pods.exec.create"}],"methodName":"io.k8s.core.v1.pods.exec.create","requestMetadata":{"callerIp":"10.1.1.1","callerSuppliedUserAgent":"kubectl/v1.30"},"resourceName":"core/v1/namespaces/ns/pods/p/exec","serviceName":"k8s.io","status":{"code":7,"message":"forbidden"},"request":{"kind":"PodExecOptions"}},"insertId":"i1","operation":{"id":"op1","producer":"k8s.io","first":true,"last":true},"resource":{"type":"k8s_cluster","labels":{"cluster_name":"gk1","location":"eu","project_id":"p"}},"timestamp":"2026-03-19T10:30:00.123456789Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}"#;
    let (rows, errors) = decode(entry, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    let r = &rows[0];
    assert_eq!(r.source_format, Some("gke"));
    assert_eq!(r.audit_id.as_deref(), Some("op1"));
    assert_eq!(r.verb.as_deref(), Some("create"));
    assert_eq!(r.subresource.as_deref(), Some("exec"));
    assert_eq!(r.namespace.as_deref(), Some("ns"));
    assert_eq!(r.user_name.as_deref(), Some("jane@example.com"));
    assert_eq!(r.response_code, Some(403));
    assert_eq!(r.authz_decision.as_deref(), Some("forbid"));
    assert_eq!(r.envelope_cluster.as_deref(), Some("gk1"));
    let env = r.envelope.as_deref().unwrap();
    assert!(
        !env.contains("PodExecOptions"),
        "the body is kept only in its column"
    );
    let body: Value = serde_json::from_str(r.request_object.as_deref().unwrap()).unwrap();
    let Rebuilt::Value(back) = rebuild_envelope(env, &Value::Null, Some(&body), None).unwrap()
    else {
        panic!("a line");
    };
    assert_eq!(back, serde_json::from_str::<Value>(entry).unwrap());

    let push = format!(
        r#"{{"message":{{"data":"{}","messageId":"m1","publishTime":"2026-03-19T10:30:01Z"}},"subscription":"projects/p/subscriptions/s"}}"#,
        encode_data(entry.as_bytes(), false).unwrap()
    );
    let (rows, errors) = decode(&push, Format::Gke);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows[0].audit_id.as_deref(), Some("op1"));
    let Rebuilt::Value(back) = rebuild_envelope(
        rows[0].envelope.as_deref().unwrap(),
        &Value::Null,
        Some(&body),
        None,
    )
    .unwrap() else {
        panic!("a line");
    };
    // The data is base64 again, of the same JSON value (its keys in the store's order).
    let (data, gz) = decode_data(
        back["message"]["data"].as_str().unwrap(),
        "data",
        MAX_DATA_BYTES,
    )
    .unwrap();
    assert!(!gz);
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        serde_json::from_str::<Value>(entry).unwrap()
    );
    let mut sent: Value = serde_json::from_str(&push).unwrap();
    let mut back = back;
    sent["message"]["data"] = Value::Null;
    back["message"]["data"] = Value::Null;
    assert_eq!(back, sent);

    let other = entry.replace(
        r#""serviceName":"k8s.io""#,
        r#""serviceName":"compute.googleapis.com""#,
    );
    let (rows, errors) = decode(&other, Format::Auto);
    assert!(rows.is_empty());
    assert!(errors[0].contains("compute.googleapis.com"), "{errors:?}");
}

#[test]
fn the_marker_key_is_refused_in_input_envelopes() {
    let rec = format!(
        r#"{{"category":"kube-audit","properties":{{"log":{EVENT},"pod":{{"$auditlake":"requestObject"}}}}}}"#
    );
    let (rows, errors) = decode(&rec, Format::Auto);
    assert!(rows.is_empty());
    assert!(errors[0].contains("reserved"), "{errors:?}");
}

#[test]
fn a_key_given_twice_is_refused_inside_envelopes_too() {
    // Which objectRef counts would be the parser's guess: a Secret's body then goes unredacted.
    let twice = r#"{"auditID":"d1","stage":"ResponseComplete","verb":"create","requestReceivedTimestamp":"2026-03-19T11:02:00Z","objectRef":{"resource":"secrets"},"objectRef":{"resource":"configmaps"},"requestObject":{"data":{"p":"x"}}}"#;
    for text in [
        twice.to_owned(),
        format!("[{twice}]"),
        format!("{twice}{twice}"),
        format!(r#"{{"category":"kube-audit","properties":{{"log":{twice}}}}}"#),
        format!(r#"{{"category":"kube-audit","properties":{{"log":{EVENT},"log":{EVENT}}}}}"#),
    ] {
        let (rows, errors) = decode(&text, Format::Auto);
        assert!(rows.is_empty(), "{text}: stored");
        assert!(
            errors.iter().all(|e| e.contains("duplicate key")),
            "{text}: {errors:?}"
        );
    }
}

#[test]
fn a_reject_inside_base64_data_keeps_the_decoded_text_for_masking() {
    let cut = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"k8s.io","resourceName":"core/v1/namespaces/p/secrets/s","request":{"kind":"Secret","data":{"password":"c2VjcmV0"#;
    let push = format!(
        r#"{{"message":{{"data":"{}"}},"subscription":"s"}}"#,
        encode_data(cut.as_bytes(), false).unwrap()
    );
    let mut raws = Vec::new();
    decode_input(
        &push,
        Format::Auto,
        &DecodeOptions::default(),
        &mut |_, raw, r| {
            assert!(r.is_err());
            raws.push(raw.to_owned());
        },
    )
    .unwrap();
    assert_eq!(raws, [cut.to_owned()]);
}

/// What a review attacking the envelopes found, each held here.
#[test]
fn review_findings_stay_fixed() {
    let rid = "/SUBSCRIPTIONS/X/RESOURCEGROUPS/MANAGEDCLUSTERS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/REALNAME";
    // An AKS record with Azure's top-level `level` is still an envelope, not an event.
    let rec = format!(
        r#"{{"category":"kube-audit","level":"Informational","timestamp":"2025-01-10T10:00:00Z","resourceId":"{rid}","properties":{{"log":{}}}}}"#,
        quoted(EVENT)
    );
    let (rows, errors) = decode(&rec, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows[0].source_format, Some("aks"));
    assert_eq!(rows[0].audit_id.as_deref(), Some("a1"));
    // The cluster is the resource's, not a resource group named MANAGEDCLUSTERS.
    assert_eq!(rows[0].envelope_cluster.as_deref(), Some("realname"));

    // The reserved key inside a request body does not get the event refused.
    let entry = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"io.k8s.core.v1.configmaps.patch","resourceName":"core/v1/namespaces/default/secrets/s1","serviceName":"k8s.io","request":{"$auditlake":"x","data":{"k":"PLANTED"}}},"insertId":"i","operation":{"id":"op","first":true,"last":false},"timestamp":"2026-03-19T10:30:00Z"}"#;
    let (rows, errors) = decode(entry, Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    // The path decides the resource (so the Secret's redaction rules), whatever methodName says;
    // a first entry without its last is the request's start.
    assert_eq!(rows[0].resource.as_deref(), Some("secrets"));
    let body = rows[0].request_object.as_deref().unwrap();
    assert!(!body.contains("PLANTED"), "{body}");
    let (rows, _) = decode(
        &entry.replace(
            r#""first":true,"last":false"#,
            r#""first":false,"last":true"#,
        ),
        Format::Auto,
    );
    assert_eq!(rows[0].verb.as_deref(), Some("patch"));
    let (rows, _) = decode(entry, Format::Auto);
    assert!(
        rows[0]
            .envelope
            .as_deref()
            .unwrap()
            .contains("requestObject")
    );

    // Base64 data inside base64 data is refused, and a delivery's data has one budget.
    let inner = format!(
        r#"{{"message":{{"data":"{}"}},"subscription":"s"}}"#,
        encode_data(entry.as_bytes(), false).unwrap()
    );
    let outer = format!(
        r#"{{"message":{{"data":"{}"}},"subscription":"s"}}"#,
        encode_data(inner.as_bytes(), true).unwrap()
    );
    let (rows, errors) = decode(&outer, Format::Auto);
    assert!(rows.is_empty());
    assert!(
        errors[0].contains("base64 data inside base64 data"),
        "{errors:?}"
    );
    let big = "x".repeat(40 << 20);
    let record = format!(
        r#"{{"data":"{}"}}"#,
        encode_data(big.as_bytes(), true).unwrap()
    );
    let firehose = format!(r#"{{"requestId":"r","records":[{record},{record}]}}"#);
    let (_, errors) = decode(&firehose, Format::Eks);
    assert!(
        errors.iter().any(|e| e.contains("more than 64 MiB")),
        "{errors:?}"
    );
}

#[test]
fn the_stage_of_gke_entries_comes_from_first_and_last() {
    let entry = |first: bool, last: bool| {
        format!(
            r#"{{"protoPayload":{{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"io.k8s.core.v1.pods.exec.create","resourceName":"core/v1/namespaces/n/pods/p/exec","serviceName":"k8s.io","status":{{"code":0}}}},"operation":{{"id":"op","first":{first},"last":{last}}},"timestamp":"2026-03-19T10:30:00Z"}}"#
        )
    };
    let decoded = |f, l| {
        let (mut rows, errors) = decode(&entry(f, l), Format::Gke);
        assert!(errors.is_empty(), "{errors:?}");
        rows.remove(0)
    };
    let both = decoded(true, true);
    assert_eq!(both.response_code, Some(101));
    assert!(both.envelope.unwrap().contains("first"));
    assert_eq!(both.stage.as_deref(), Some("ResponseComplete"));
    assert_eq!(
        decoded(true, false).stage.as_deref(),
        Some("ResponseStarted")
    );
    assert_eq!(
        decoded(false, true).stage.as_deref(),
        Some("ResponseComplete")
    );
}
