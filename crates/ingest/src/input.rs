use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// One input of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// Bytes already in memory (a segment of the receiver's write-ahead log), named for reports
    /// and rejects.
    Memory {
        name: String,
        data: Arc<[u8]>,
    },
}

impl Input {
    /// How the input is named in reports.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::File(p) => p.display().to_string(),
            Input::Memory { name, .. } => name.clone(),
        }
    }

    /// Size on disk, when known (for progress).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Memory { data, .. } => Some(data.len() as u64),
        }
    }

    /// Opens the input, decompressing gzip (recognised by its magic bytes, whatever the name),
    /// and counting raw bytes read into `counter`.
    pub(crate) fn open(
        &self,
        counter: impl Fn(u64) + Send + 'static,
    ) -> Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::Memory { data, .. } => Box::new(io::Cursor::new(Arc::clone(data))),
            Input::File(p) => Box::new(File::open(p).map_err(|source| Error::Input {
                name: self.name(),
                source,
            })?),
        };
        let mut buf = BufReader::with_capacity(
            1 << 20,
            Counting {
                inner: raw,
                counter,
            },
        );
        let head = buf.fill_buf().map_err(|source| Error::Input {
            name: self.name(),
            source,
        })?;
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Box::new(BufReader::with_capacity(
                1 << 20,
                MultiGzDecoder::new(buf),
            )))
        } else {
            Ok(Box::new(buf))
        }
    }
}

struct Counting<R, F> {
    inner: R,
    counter: F,
}

impl<R: Read, F: Fn(u64)> Read for Counting<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.counter)(n as u64);
        Ok(n)
    }
}

/// Whether a file found in a folder looks like an audit log (`audit.log`, rotated
/// `audit-2026-03-19T10-30-00.000.log.gz`, `*.json`, `*.jsonl`, `*.ndjson`).
fn looks_like_log(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with('.') || name.starts_with('_') {
        return false;
    }
    let base = name.strip_suffix(".gz").unwrap_or(name);
    base.ends_with(".log")
        || base.ends_with(".json")
        || base.ends_with(".jsonl")
        || base.ends_with(".ndjson")
        || base.starts_with("audit")
}

fn walk(dir: &Path, out: &mut Vec<Input>) -> Result<()> {
    let err = |source| Error::Input {
        name: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()
        .map_err(err)?;
    // Rotated files (`audit-<time>.log`) sort before the active `audit.log`, oldest first.
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if looks_like_log(&p) {
            out.push(Input::File(p));
        }
    }
    Ok(())
}

/// Turns command-line arguments into inputs: files, folders (walked for audit logs), glob
/// patterns, and `-` for standard input. Fails before anything is read if an argument matches
/// nothing.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let p = Path::new(arg);
        if p.exists() {
            if p.is_dir() {
                walk(p, &mut out)?;
            } else {
                out.push(Input::File(p.to_path_buf()));
            }
            continue;
        }
        if arg.contains(['*', '?', '[']) {
            let paths = glob::glob(arg).map_err(|e| Error::Pattern {
                pattern: arg.clone(),
                reason: e.to_string(),
            })?;
            let mut matched: Vec<PathBuf> = paths
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(Error::Pattern {
                    pattern: arg.clone(),
                    reason: "matches no file".into(),
                });
            }
            matched.sort();
            out.extend(matched.into_iter().map(Input::File));
            continue;
        }
        return Err(Error::Input {
            name: arg.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
        });
    }
    Ok(out)
}
