//! Evidence kept per closed day: the rows each day-local control's view gives for one UTC day, and
//! that day's records lacking PCI DSS 10.2.2 details, as Parquet under `_evidence/` in the store
//! (a folder that readers of the table ignore: Delta readers follow the log, Spark, Hive and Trino
//! skip `_` folders, and the README's DuckDB glob is `date=*/*.parquet`).
//!
//! A kept file is named by the SHA-256 of everything its rows depend on: the auditlake version
//! and the SQL of the shared views (the engine's [`Engine::kept_base`]), the scope, the control's
//! SQL and the day's files at the table version the report reads. Any change to one of them
//! names another file, so a kept file is never used for what it was not computed from: a late
//! event or a compaction changes the day's files, a new scope or control SQL every day's key.
//!
//! [`Engine::kept_base`]: crate::Engine::kept_base

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use sha2::Digest;

use crate::{Error, Result};

/// The folder of the store that holds kept evidence.
pub const DIR: &str = "_evidence";

/// The name of what `incomplete_records` gives for a day, beside the controls' views.
pub(crate) const INCOMPLETE: &str = "incomplete_records";

/// The hex SHA-256 of the parts (each length-prefixed, so that no two lists collide).
pub fn key(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The store-relative name of the kept rows of `what` (a view) for `date`, under `key`.
pub fn name(date: &str, what: &str, key: &str) -> String {
    format!("{DIR}/date={date}/{what}-{}.parquet", &key[..32])
}

/// The rows as a Parquet file (zstd: the files are small and read whole).
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, Arc::clone(schema), Some(props))
        .map_err(|e| Error::Render(format!("kept evidence: {e}")))?;
    for b in batches {
        w.write(b)
            .map_err(|e| Error::Render(format!("kept evidence: {e}")))?;
    }
    w.close()
        .map_err(|e| Error::Render(format!("kept evidence: {e}")))?;
    Ok(out)
}

/// The rows of a kept file.
pub fn decode(bytes: Vec<u8>) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| Error::Render(format!("kept evidence: {e}")))?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_different_parts_differ() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["x"]), key(&["x"]));
        let n = name("2026-01-02", "v", &key(&["x"]));
        assert!(n.starts_with("_evidence/date=2026-01-02/v-"));
        assert!(n.ends_with(".parquet"));
    }
}
