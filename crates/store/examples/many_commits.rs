//! Builds a store of many commits, as a webhook receiver flushing every few minutes makes one:
//! `DAYS` days of `COMMITS` appends a day, each a small file of `EVENTS` events, through the
//! store's one writer (checkpoints every 100 commits included). For benches/first_prompt.py.
//!
//!     cargo run --release -p auditlake-store --example many_commits -- STORE 90 200 20

use auditlake_model::redact::RedactOptions;
use auditlake_model::{DecodeOptions, EventBatchBuilder, decode::decode_event};
use auditlake_store::{Commit, CommitKind, Partition, RunId, Store, WriteOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, days, commits, events] = args.as_slice() else {
        return Err("usage: many_commits STORE DAYS COMMITS_PER_DAY EVENTS_PER_COMMIT".into());
    };
    let (days, commits, events): (i64, i64, i64) =
        (days.parse()?, commits.parse()?, events.parse()?);
    let rt = tokio::runtime::Runtime::new()?;
    let store = Store::open(store, &[])?;
    let mut version = rt.block_on(store.ensure_table())?;
    let run = RunId::new();
    let opts = DecodeOptions {
        redact: RedactOptions::disabled(),
    };
    let start = chrono::Utc::now().timestamp_micros() / 86_400_000_000 * 86_400_000_000
        - days * 86_400_000_000;
    let mut seq = 0u32;
    let t0 = std::time::Instant::now();
    for day in 0..days {
        for c in 0..commits {
            let mut b = EventBatchBuilder::new();
            let texts: Vec<String> = (0..events)
                .map(|e| {
                    let ts = start
                        + day * 86_400_000_000
                        + (c * events + e) * (86_400_000_000 / (commits * events));
                    let t = auditlake_model::time::format_canonical(ts);
                    format!(
                        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{{"username":"system:serviceaccount:kube-system:bench"}},"sourceIPs":["10.0.0.1"],"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{t}","stageTimestamp":"{t}"}}"#,
                        uuid::Uuid::new_v4()
                    )
                })
                .collect();
            for t in &texts {
                b.append(&decode_event(t, &opts)?, Some("bench"));
            }
            let batch = b.finish()?;
            let enc = auditlake_store::encode_parquet(&[batch], &WriteOptions::default())?;
            let partition = Partition::of(start + day * 86_400_000_000);
            seq += 1;
            let file = rt.block_on(store.write_data_file(
                &partition,
                &run,
                seq,
                enc.bytes,
                enc.rows,
                enc.ts_range.unwrap_or_default(),
            ))?;
            let mut commit = Commit::new(CommitKind::Ingest, run.as_str(), "bench");
            commit.add.push(file);
            version = rt
                .block_on(store.try_commit(Some(version), &commit))?
                .ok_or("another writer committed meanwhile")?;
        }
        eprintln!(
            "day {}/{days}: version {version}, {:.0}s",
            day + 1,
            t0.elapsed().as_secs_f64()
        );
    }
    println!("{version}");
    Ok(())
}
