//! Parquet encoding of event batches: sorted by `ts`, zstd, dictionaries, page statistics.

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

/// Encodes batches, already sorted by `ts`, into one Parquet file in memory.
pub struct FileEncoder {
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

fn new_file_err(e: parquet::errors::ParquetError) -> Error {
    Error::Parquet {
        path: "(new file)".into(),
        source: e,
    }
}

impl FileEncoder {
    pub fn new(opts: &WriteOptions, capacity: usize) -> Result<Self> {
        let schema = auditlake_model::audit_events_schema();
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(capacity),
            schema,
            Some(properties(opts)?),
        )
        .map_err(new_file_err)?;
        Ok(Self { writer, rows: 0 })
    }

    /// Appends rows; they must not sort before the rows already written.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(new_file_err)
    }

    /// Bytes of the file so far: written row groups plus the one being encoded.
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file: footer, statistics, page index.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.writer.into_inner().map_err(new_file_err)
    }
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
    let mut enc = FileEncoder::new(opts, sorted.get_array_memory_size() / 8 + 1024)?;
    enc.write(&sorted)?;
    enc.finish()
}
