use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use auditlake_query::{AuditSession, QueryOptions};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use futures::StreamExt;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Format as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown format {s:?}: table, csv, json or ndjson"))
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Run this SQL and exit (repeatable; each may hold several statements).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// Run the SQL in this file and exit.
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// Output format (table on a terminal, csv otherwise).
    #[arg(long)]
    format: Option<Format>,
    /// Memory for query execution, e.g. 512M or 4G; larger sorts and aggregates spill or fail
    /// clearly instead of exhausting the machine.
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Print how long each statement took (to stderr).
    #[arg(long)]
    timing: bool,
    /// Read the store as it stood at a table version (a number) or a time (RFC 3339 or a date).
    #[arg(long, value_name = "VERSION|TIME")]
    as_of: Option<String>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let m: usize = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown unit in {s:?}: use K, M, G or T")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("cannot read {s:?} as a size"))?;
    Ok((n * mult as f64) as usize)
}

pub fn run(store: &str, scope: auditlake_query::Scope, args: Args) -> Result<ExitCode> {
    let store = crate::open_existing_store(store)?;
    let rt = crate::runtime()?;
    let opts = QueryOptions {
        memory_limit: args.memory_limit,
        scope,
        as_of: args
            .as_of
            .as_deref()
            .map(crate::time_arg::parse_as_of)
            .transpose()?,
        ..Default::default()
    };
    let session = rt.block_on(AuditSession::open(store, &opts))?;
    let stdout_tty = std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if stdout_tty {
        Format::Table
    } else {
        Format::Csv
    });

    let mut scripts: Vec<(String, String)> = args
        .commands
        .iter()
        .map(|c| ("-c".to_owned(), c.clone()))
        .collect();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        scripts.push((f.display().to_string(), text));
    }
    if scripts.is_empty() {
        if std::io::stdin().is_terminal() {
            return crate::repl::run(&rt, &session, format);
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read SQL from standard input")?;
        scripts.push(("<stdin>".to_owned(), text));
    }
    let mut out = std::io::stdout().lock();
    for (origin, script) in scripts {
        let statements = session
            .split_statements(&script)
            .with_context(|| format!("in {origin}"))?;
        for sql in statements {
            let started = Instant::now();
            let rows = rt
                .block_on(run_statement(&session, &sql, format, &mut out))
                .with_context(|| format!("statement failed: {}", one_line(&sql)))?;
            if args.timing {
                eprintln!("{rows} row(s) in {:.3}s", started.elapsed().as_secs_f64());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of a statement, for error messages.
pub fn one_line(sql: &str) -> String {
    let s: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Plans, runs and prints one statement; returns the number of rows.
pub async fn run_statement(
    session: &AuditSession,
    sql: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<usize> {
    // A file listed at planning may be removed by a compaction that commits meanwhile: plan again
    // (a new file list) as long as nothing has been printed.
    let mut attempt = 0;
    let (schema, mut stream, first) = loop {
        let planned = async {
            let df = session.sql(sql).await?;
            let schema = df.schema().as_arrow().clone();
            let mut stream = df.execute_stream().await?;
            let first = stream.next().await.transpose()?;
            Ok::<_, auditlake_query::Error>((schema, stream, first))
        }
        .await;
        match planned {
            Err(auditlake_query::Error::DataFusion(e))
                if attempt < 3 && auditlake_query::is_not_found(&e) =>
            {
                attempt += 1;
            }
            other => break other?,
        }
    };
    let mut batches = Vec::new();
    let mut rows = 0;
    let mut printer = Printer::new(format, out, std::sync::Arc::new(schema.clone()));
    let mut next = first;
    while let Some(b) = match next.take() {
        Some(b) => Some(Ok(b)),
        None => stream.next().await,
    } {
        let b = b?;
        rows += b.num_rows();
        if format == Format::Table {
            batches.push(b);
        } else {
            printer.batch(&b)?;
        }
    }
    if format == Format::Table {
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(std::sync::Arc::new(schema)));
        }
        writeln!(printer.out, "{}", pretty_format_batches(&batches)?)?;
        writeln!(
            printer.out,
            "({rows} row{})",
            if rows == 1 { "" } else { "s" }
        )?;
    }
    printer.finish()?;
    Ok(rows)
}

struct Printer<'a> {
    format: Format,
    schema: datafusion::arrow::datatypes::SchemaRef,
    out: &'a mut dyn Write,
    started: bool,
    csv_header: bool,
}

impl<'a> Printer<'a> {
    fn new(
        format: Format,
        out: &'a mut dyn Write,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Self {
        Self {
            format,
            schema,
            out,
            started: false,
            csv_header: true,
        }
    }

    fn batch(&mut self, b: &RecordBatch) -> Result<()> {
        use datafusion::arrow::{csv, json};
        match self.format {
            Format::Table => {}
            Format::Csv => {
                let b = &flatten_nested(b)?;
                let mut w = csv::WriterBuilder::new()
                    .with_header(self.csv_header)
                    .build(&mut *self.out);
                w.write(b)?;
                self.csv_header = false;
            }
            Format::Ndjson => {
                let mut w = json::LineDelimitedWriter::new(&mut *self.out);
                w.write(b)?;
                w.finish()?;
            }
            Format::Json => {
                let mut buf = Vec::new();
                {
                    let mut w = json::ArrayWriter::new(&mut buf);
                    w.write(b)?;
                    w.finish()?;
                }
                // Stitch the arrays of several batches into one.
                let inner = buf
                    .strip_prefix(b"[")
                    .and_then(|s| s.strip_suffix(b"]"))
                    .unwrap_or(&buf);
                if inner.is_empty() {
                    return Ok(());
                }
                self.out
                    .write_all(if self.started { b",\n" } else { b"[" })?;
                self.out.write_all(inner)?;
                self.started = true;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        if self.format == Format::Csv && self.csv_header {
            // No rows: the header still tells a script which columns there would be.
            let empty = RecordBatch::new_empty(std::sync::Arc::clone(&self.schema));
            self.batch(&empty)?;
        }
        if self.format == Format::Json {
            self.out
                .write_all(if self.started { b"]\n" } else { b"[]\n" })?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// CSV has no lists or structs: such columns are written as their display text (`[a, b]`).
fn flatten_nested(b: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, StringBuilder};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(b.clone());
    }
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let opts = FormatOptions::default();
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let fmt = ArrayFormatter::try_new(c.as_ref(), &opts)?;
            let mut sb = StringBuilder::new();
            for i in 0..c.len() {
                if c.is_null(i) {
                    sb.append_null();
                } else {
                    sb.append_value(fmt.value(i).to_string());
                }
            }
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            cols.push(std::sync::Arc::new(sb.finish()));
        } else {
            fields.push(f.as_ref().clone());
            cols.push(c.clone());
        }
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        cols,
    )?)
}
