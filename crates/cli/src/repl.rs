//! The interactive shell of `auditlake sql`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Result;
use auditlake_query::AuditSession;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use crate::sql::{Format, one_line, run_statement};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "HAVING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "DISTINCT",
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "JOIN",
    "LEFT",
    "INNER",
    "ON",
    "WITH",
    "UNION",
    "ALL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DESC",
    "ASC",
    "INTERVAL",
    "NOW",
    "EXPLAIN",
    "ANALYZE",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "CREATE",
    "VIEW",
    "COPY",
    "TO",
    "date_trunc",
    "json_get_str",
    "json_get",
    "json_get_int",
    "json_get_bool",
    "json_contains",
    "json_length",
    "array_has",
    "unnest",
    "approx_distinct",
    "approx_percentile_cont",
];

const HELP: &str = "\
  SQL statements end with ';' and may span lines.
  \\d            list tables and views
  \\d NAME       columns of a table or view
  \\timing       toggle timing of statements
  \\format F     output format: table, csv, json, ndjson
  \\?            this help
  \\q            quit (or Ctrl-D)
  Ctrl-C cancels the running query (or clears the line).";

struct SqlHelper {
    /// Completion candidates: keywords, tables and views, and columns. Filled in the background
    /// once the views are planned, so that the first prompt does not wait for them.
    words: Arc<RwLock<Vec<String>>>,
}

impl Helper for SqlHelper {}
impl Highlighter for SqlHelper {}
impl Hinter for SqlHelper {
    type Hint = String;
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || input.ends_with(';') {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let lower = word.to_ascii_lowercase();
        let words = self.words.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Pair> = words
            .iter()
            .filter(|w| w.to_ascii_lowercase().starts_with(&lower))
            .map(|w| {
                // Keywords follow the case the user types.
                let text = if word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && w.chars().all(|c| c.is_ascii_uppercase())
                {
                    w.to_ascii_lowercase()
                } else {
                    w.clone()
                };
                Pair {
                    display: text.clone(),
                    replacement: text,
                }
            })
            .collect();
        out.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, out))
    }
}

fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    let dir = base.join("auditlake");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

pub fn run(
    rt: &tokio::runtime::Runtime,
    session: &AuditSession,
    mut format: Format,
) -> Result<ExitCode> {
    // The first prompt shows at once: keywords, table and view names and the columns of
    // audit_events are there from the start; the views' columns follow when planned (~50 ms).
    let mut words: Vec<String> = KEYWORDS.iter().map(|s| (*s).to_owned()).collect();
    words.extend(session.table_names());
    words.extend(
        auditlake_model::audit_events_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone()),
    );
    words.sort();
    words.dedup();
    let words = Arc::new(RwLock::new(words));
    {
        let (session, words) = (session.clone(), Arc::clone(&words));
        rt.spawn(async move {
            // An error here shows again, with its message, when the user runs \d.
            if let Ok(catalog) = session.catalog().await {
                let mut w = words.write().unwrap_or_else(|e| e.into_inner());
                for (name, _, cols) in catalog {
                    w.push(name);
                    w.extend(cols.into_iter().map(|(c, _)| c));
                }
                w.sort();
                w.dedup();
            }
        });
    }
    let config = Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000)?
        .build();
    let mut rl: Editor<SqlHelper, rustyline::history::FileHistory> = Editor::with_config(config)?;
    rl.set_helper(Some(SqlHelper { words }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut timing = false;
    println!(
        "auditlake {} on {} — \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION"),
        session.store().url()
    );
    loop {
        let line = match rl.readline("auditlake> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        if let Some(cmd) = input.strip_prefix('\\') {
            let mut parts = cmd.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("q"), _) => break,
                (Some("?") | Some("h"), _) => println!("{HELP}"),
                (Some("timing"), _) => {
                    timing = !timing;
                    println!("timing is {}", if timing { "on" } else { "off" });
                }
                (Some("format"), Some(f)) => match f.parse::<Format>() {
                    Ok(f) => {
                        format = f;
                        println!("output format is {f:?}");
                    }
                    Err(e) => eprintln!("error: {e}"),
                },
                (Some("d"), None) => {
                    let catalog = rt.block_on(session.catalog())?;
                    for (name, kind, cols) in catalog {
                        println!("{kind:5}  {name} ({} columns)", cols.len());
                    }
                }
                (Some("d"), Some(name)) => {
                    let catalog = rt.block_on(session.catalog())?;
                    match catalog.iter().find(|(n, _, _)| n == name) {
                        Some((_, kind, cols)) => {
                            println!("{kind} {name}");
                            for (c, t) in cols {
                                println!("  {c:28} {t}");
                            }
                        }
                        None => {
                            eprintln!("error: no table or view named {name:?} (\\d lists them)")
                        }
                    }
                }
                _ => eprintln!("error: unknown command \\{cmd} (\\? for help)"),
            }
            continue;
        }
        let statements = match session.split_statements(input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        for sql in statements {
            let started = Instant::now();
            let mut out = std::io::stdout().lock();
            let result = rt.block_on(async {
                tokio::select! {
                    r = run_statement(session, &sql, format, &mut out) => Some(r),
                    _ = tokio::signal::ctrl_c() => None,
                }
            });
            drop(out);
            match result {
                None => {
                    eprintln!("query cancelled");
                    break;
                }
                Some(Err(e)) => {
                    eprintln!("error: {e:#}");
                    eprintln!("  in: {}", one_line(&sql));
                    break;
                }
                Some(Ok(rows)) => {
                    if timing {
                        eprintln!("{rows} row(s) in {:.3}s", started.elapsed().as_secs_f64());
                    }
                }
            }
        }
        let _ = std::io::stdout().flush();
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}
