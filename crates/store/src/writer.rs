//! Parquet encoding of event batches: sorted by `ts`, zstd, dictionaries, page statistics.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use auditlake_model::schema::col;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use crate::{Error, Result};

/// How data files are encoded.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// zstd level (1-22).
    pub zstd_level: i32,
    /// Rows per row group: the unit that statistics prune and readers parallelise on.
    pub row_group_rows: usize,
    /// Rows per data page: the unit the page index prunes.
    pub page_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            row_group_rows: 128 * 1024,
            page_rows: 8 * 1024,
        }
    }
}

fn properties(opts: &WriteOptions) -> Result<WriterProperties> {
    let zstd = ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::Parquet {
        path: "(writer properties)".into(),
        source: e,
    })?;
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_data_page_row_count_limit(opts.page_rows)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("auditlake {}", env!("CARGO_PKG_VERSION")));
    // Sorted timestamps: deltas of deltas are tiny; a dictionary would only get in the way.
    for c in [col::TS, col::STAGE_TS] {
        let p = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::DELTA_BINARY_PACKED);
    }
    // Unique per event: a dictionary never pays off.
    b = b.set_column_dictionary_enabled(ColumnPath::from(col::AUDIT_ID), false);
    Ok(b.build())
}

/// Sorts `batches` by `ts` and encodes them as one Parquet file.
pub fn encode_parquet(batches: &[RecordBatch], opts: &WriteOptions) -> Result<Vec<u8>> {
    let schema = auditlake_model::audit_events_schema();
    let batch = arrow::compute::concat_batches(&schema, batches)?;
    let ts = batch
        .column_by_name(col::TS)
        .ok_or_else(|| Error::Arrow(arrow::error::ArrowError::SchemaError("no ts".into())))?;
    let idx = sort_to_indices(ts, Some(SortOptions::default()), None)?;
    let sorted = take_record_batch(&batch, &idx)?;
    drop(batch);
    let mut buf = Vec::with_capacity(sorted.get_array_memory_size() / 8 + 1024);
    let mut w = ArrowWriter::try_new(&mut buf, Arc::clone(&schema), Some(properties(opts)?))
        .map_err(|e| Error::Parquet {
            path: "(new file)".into(),
            source: e,
        })?;
    let pq = |e| Error::Parquet {
        path: "(new file)".into(),
        source: e,
    };
    w.write(&sorted).map_err(pq)?;
    w.close().map_err(pq)?;
    Ok(buf)
}
