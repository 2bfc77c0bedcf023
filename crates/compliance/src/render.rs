//! A [`Report`] as JSON, NDJSON, CSV, Markdown and HTML.
//!
//! JSON and CSV carry every evidence row unless the report was capped; NDJSON streams the rows
//! from the engine, so that a large window never sits in memory. HTML comes from maud, which
//! escapes every value; CSV from the `csv` crate, with the cells a spreadsheet would run as a
//! formula neutralised; Markdown cells are escaped.

use std::fmt::Write as _;
use std::io::Write;

use futures::StreamExt;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

use crate::controls::{EVIDENCE_COLUMNS, framework_title};
use crate::report::{
    ControlResult, Day, Engine, Evidence, Report, Request, Status, evidence_rows, evidence_sql,
    version_text,
};
use crate::{CONTROLS, Error, Kind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    Md,
    Html,
    Json,
    Ndjson,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Md => "md",
            Self::Html => "html",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }

    /// Evidence rows per control when none is asked for: all of them where a machine reads the
    /// report, a page's worth where a person does. NDJSON streams the rows after the report, so
    /// the report itself collects none.
    pub fn evidence_cap(self) -> Option<usize> {
        match self {
            Self::Md | Self::Html => Some(25),
            Self::Ndjson => Some(0),
            Self::Json | Self::Csv => None,
        }
    }
}

/// Renders a report in a format other than NDJSON (which [`ndjson`] streams).
pub fn render(report: &Report, format: Format) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Json => {
            let mut v = Vec::new();
            json(report, &mut v)?;
            v
        }
        Format::Csv => csv(report)?,
        Format::Md => markdown(report).into_bytes(),
        Format::Html => html(report).into_string().into_bytes(),
        Format::Ndjson => {
            return Err(Error::Render(
                "NDJSON is streamed from the store: use render::ndjson".into(),
            ));
        }
    })
}

/// Writes the report as JSON: indented down to the controls' lists, and each item of a list
/// inside a control (an evidence row, a day's count) on one line of its own. A month's report
/// holds a million rows; one line per row is a third smaller than indenting every field, and
/// `grep` finds a row whole.
pub fn json(report: &Report, out: &mut dyn Write) -> Result<()> {
    // A buffer of a known type: serde_json writes a token at a time, and through `dyn Write`
    // each token was a call that could not be inlined (8% of a warm report's time).
    let mut buf = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, RowsPerLine::default());
    report
        .serialize(&mut ser)
        .map_err(|e| Error::Render(e.to_string()))?;
    buf.write_all(b"\n")
        .and_then(|()| buf.flush())
        .map_err(|e| Error::Render(format!("cannot write: {e}")))
}

/// serde_json's pretty formatter (two spaces) down to [`RowsPerLine::DEPTH`] nested
/// containers, compact below.
#[derive(Default)]
struct RowsPerLine {
    depth: usize,
    has_value: bool,
}

impl RowsPerLine {
    /// The report (1), its controls (2), a control (3), a control's lists (4): the items of
    /// those lists are written compact.
    const DEPTH: usize = 4;

    fn indented(&self) -> bool {
        self.depth <= Self::DEPTH
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        let indented = self.indented();
        self.depth -= 1;
        if indented && self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.indented() {
            self.newline(w)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for RowsPerLine {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(if self.indented() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// One line of NDJSON: `record` says what the line is.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    record: &'a str,
    #[serde(flatten)]
    value: T,
}

fn line<T: Serialize>(out: &mut dyn Write, record: &str, value: T) -> Result<()> {
    let io = |e: std::io::Error| Error::Render(format!("cannot write: {e}"));
    serde_json::to_writer(&mut *out, &Line { record, value })
        .map_err(|e| Error::Render(e.to_string()))?;
    out.write_all(b"\n").map_err(io)
}

/// The report as newline-delimited JSON: a `report` line (everything but the controls), a
/// `control` line per control (without its rows), then an `evidence` line per row of every
/// control with rows, streamed from the engine control by control.
pub async fn ndjson<E: Engine>(
    engine: &E,
    report: &Report,
    req: &Request,
    out: &mut dyn Write,
) -> Result<()> {
    let mut head = serde_json::to_value(report).map_err(|e| Error::Render(e.to_string()))?;
    if let Some(o) = head.as_object_mut() {
        o.remove("controls");
    }
    line(out, "report", head)?;
    for c in &report.controls {
        let mut v = serde_json::to_value(c).map_err(|e| Error::Render(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("evidence");
            o.remove("evidence_shown");
        }
        line(out, "control", v)?;
    }
    #[derive(Serialize)]
    struct Row<'a> {
        framework: &'a str,
        control_id: &'a str,
        view: &'a str,
        #[serde(flatten)]
        row: &'a Evidence,
    }
    for c in report.controls.iter().filter(|c| c.rows > 0) {
        let Some(control) = CONTROLS.iter().find(|k| k.view == c.view) else {
            continue;
        };
        let sql = evidence_sql(control, req.from, req.to, None);
        let mut stream = engine.stream(&sql).await.map_err(|source| Error::Query {
            what: format!("rows of {}", c.view),
            source,
        })?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            for row in evidence_rows(&batch)? {
                line(
                    out,
                    "evidence",
                    Row {
                        framework: &c.framework,
                        control_id: &c.control_id,
                        view: &c.view,
                        row: &row,
                    },
                )?;
            }
        }
    }
    out.flush()
        .map_err(|e| Error::Render(format!("cannot write: {e}")))
}

/// A cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return: a user name or a request URI is the client's text) gets a leading `'`,
/// which spreadsheets show as text (OWASP's CSV injection advice).
pub fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

fn csv(r: &Report) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Render(e.to_string());
    w.write_record(
        [
            "framework",
            "control_id",
            "title",
            "kind",
            "severity",
            "status",
            "rows",
        ]
        .into_iter()
        .chain(EVIDENCE_COLUMNS),
    )
    .map_err(err)?;
    for c in &r.controls {
        let rows = c.rows.to_string();
        let head = [
            c.framework.as_str(),
            &c.control_id,
            &c.title,
            c.kind.as_str(),
            &c.severity,
            c.status.label(),
            &rows,
        ];
        // A row for the control itself when it has no rows to list, or gaps to state.
        if c.evidence.is_empty() || !c.gaps.is_empty() {
            let why = c.not_evaluable.clone().unwrap_or_else(|| c.gaps.join("; "));
            let mut rec: Vec<String> = head.iter().map(|s| neutralise(s).into_owned()).collect();
            rec.extend(std::iter::repeat_n(String::new(), 10));
            rec.push(neutralise(&why).into_owned());
            w.write_record(&rec).map_err(err)?;
        }
        for e in &c.evidence {
            let o = |v: &Option<String>| neutralise(v.as_deref().unwrap_or("")).into_owned();
            let mut rec: Vec<String> = head.iter().map(|s| neutralise(s).into_owned()).collect();
            rec.extend([
                neutralise(&e.ts).into_owned(),
                o(&e.audit_id),
                o(&e.cluster),
                o(&e.user_name),
                o(&e.verb),
                o(&e.resource),
                o(&e.subresource),
                o(&e.namespace),
                o(&e.name),
                e.response_code.map(|c| c.to_string()).unwrap_or_default(),
                o(&e.reason),
            ]);
            w.write_record(&rec).map_err(err)?;
        }
    }
    w.into_inner().map_err(|e| Error::Render(e.to_string()))
}

/// A Markdown table cell: pipes, backslashes and the characters that start emphasis, code, links
/// or HTML escaped; newlines folded.
pub fn md_cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' => {
                o.push('\\');
                o.push(ch);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn md_rows(o: &mut String, rows: &[Evidence]) {
    let _ = writeln!(
        o,
        "| ts | audit_id | user | verb | object | code | reason |\n|---|---|---|---|---|---:|---|"
    );
    for e in rows {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_cell(&e.ts),
            md_cell(e.audit_id.as_deref().unwrap_or("")),
            md_cell(e.user_name.as_deref().unwrap_or("")),
            md_cell(e.verb.as_deref().unwrap_or("")),
            md_cell(&e.object()),
            e.response_code.map(|c| c.to_string()).unwrap_or_default(),
            md_cell(e.reason.as_deref().unwrap_or(""))
        );
    }
}

fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let t = &r.totals;
    let _ = writeln!(
        o,
        "# Compliance report: {}\n\n- Window: {} to {} (UTC, end exclusive)\n- Store: {}\n- Table version: {} (`--as-of` computes this report again)\n- Scope SHA-256: `{}`\n- Integrity: {}\n- Generated: {} by {}\n- Events in the window: {}\n\n\
         **{} of {} requirements met, {} with gaps, {} not evaluable; {} finding(s) to answer in {} control(s).**\n",
        md_cell(&r.frameworks_title()),
        r.window_from,
        r.window_to,
        md_cell(&r.store),
        version_text(r.table_version),
        r.scope_sha256,
        r.integrity.as_ref().map_or_else(
            || "not verified (--no-verify)".to_owned(),
            |i| md_cell(&i.text())
        ),
        r.generated_at,
        r.generator,
        r.events_in_window,
        t.met,
        t.controls,
        t.gaps,
        t.not_evaluable,
        t.findings_to_answer,
        t.findings
    );
    let _ = writeln!(
        o,
        "## Summary\n\n| framework | requirements | met | with gaps | not evaluable | controls with findings | findings to answer |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for f in &r.summary {
        let s = &f.totals;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f.title, s.controls, s.met, s.gaps, s.not_evaluable, s.findings, s.findings_to_answer
        );
    }
    for f in &r.summary {
        let list = |ids: &[String]| {
            if ids.is_empty() {
                "none".to_owned()
            } else {
                md_cell(&ids.join(", "))
            }
        };
        let _ = writeln!(
            o,
            "\n**{}**: met: {}; with gaps: {}; findings to answer: {}; not evaluable: {}.",
            f.title,
            list(&f.met_controls),
            list(&f.gap_controls),
            list(&f.finding_controls),
            list(&f.not_evaluable_controls)
        );
    }
    if !r.days_without_events.is_empty() {
        let _ = writeln!(
            o,
            "\n**Days without any audit event: {}** (audit logging stopped, or nothing was shipped).",
            r.days_without_events.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "\n## Controls\n\n| framework | control | title | kind | severity | status | rows |\n|---|---|---|---|---|---|---:|"
    );
    for c in &r.controls {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            framework_title(&c.framework),
            md_cell(&c.control_id),
            md_cell(&c.title),
            c.kind.as_str(),
            c.severity,
            c.status.label(),
            c.rows
        );
    }
    let _ = writeln!(
        o,
        "\n## Event coverage per day\n\n| date | events |\n|---|---:|"
    );
    for d in &r.coverage {
        let mark = if d.count == 0 { " **(none)**" } else { "" };
        let _ = writeln!(o, "| {} | {}{} |", d.date, d.count, mark);
    }
    for c in &r.controls {
        if c.status == Status::Pass {
            continue;
        }
        let _ = writeln!(
            o,
            "\n## {} {}: {} ({})\n\n{}\n\n- Finds: {}\n- Why: {}\n- Kind: {}; severity: {}; view `{}`",
            framework_title(&c.framework),
            md_cell(&c.control_id),
            md_cell(&c.title),
            c.status.label(),
            md_cell(&c.reference),
            md_cell(&c.finds),
            md_cell(&c.why),
            c.kind.as_str(),
            c.severity,
            c.view
        );
        if let Some(why) = &c.not_evaluable {
            let _ = writeln!(o, "\n**Not evaluable:** {}", md_cell(why));
            continue;
        }
        for g in &c.gaps {
            let _ = writeln!(o, "\n**Gap:** {}", md_cell(g));
        }
        if let Some(s) = &c.summary {
            let _ = writeln!(
                o,
                "\n{} evidence rows from {} identities.\n\n| identity | rows |\n|---|---:|",
                c.rows, s.identities
            );
            for i in &s.per_identity {
                let _ = writeln!(o, "| {} | {} |", md_cell(&i.key), i.count);
            }
            let _ = writeln!(o, "\n| verb and resource | rows |\n|---|---:|");
            for a in &s.per_action {
                let _ = writeln!(o, "| {} | {} |", md_cell(&a.key), a.count);
            }
            let _ = writeln!(
                o,
                "\nA random sample of {} rows (seeded by the window, `{}`), for tracing:\n",
                c.sample.len(),
                r.sample_seed
            );
            md_rows(&mut o, &c.sample);
            let _ = writeln!(
                o,
                "\nEvery row: `--format json`, `csv` or `ndjson`, or `SELECT * FROM {}` in `auditlake sql`.",
                c.view
            );
            continue;
        }
        if c.rows > 0 {
            let _ = writeln!(
                o,
                "\n{} findings; the first {} by time{}:\n",
                c.rows,
                c.evidence_shown,
                if (c.evidence_shown as u64) < c.rows {
                    " (every row: `--format json`, `csv` or `ndjson`)"
                } else {
                    ""
                }
            );
            md_rows(&mut o, &c.evidence);
        }
    }
    o
}

/// A bar per day as inline SVG; zero-days get a red mark on the axis when `flag_zero`. Every
/// text in it is a date or a number.
fn bar_chart(id: &str, title: &str, days: &[Day], color: &str, flag_zero: bool) -> Markup {
    let (w, h, left, bottom, top) = (960.0_f64, 180.0_f64, 56.0_f64, 28.0_f64, 12.0_f64);
    let max = days.iter().map(|d| d.count).max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.8).max(1.0);
    let plot_h = h - bottom - top;
    let every = (days.len() / 8).max(1);
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(title) {
                line x1=(left) y1=(h - bottom) x2=(w - 8.0) y2=(h - bottom) class="axis" {}
                text x=(left - 6.0) y=(top + 10.0) class="tick" text-anchor="end" { (max as u64) }
                text x=(left - 6.0) y=(h - bottom) class="tick" text-anchor="end" { "0" }
                @for (i, d) in days.iter().enumerate() {
                    @let x = left + i as f64 * slot + (slot - bar) / 2.0;
                    @let bh = (d.count as f64 / max) * plot_h;
                    @if d.count == 0 && flag_zero {
                        rect.zero x=(format!("{x:.1}")) y=(format!("{:.1}", h - bottom - 4.0)) width=(format!("{bar:.1}")) height="4" {
                            title { (d.date) ": no events" }
                        }
                    } @else {
                        rect.bar fill=(color) x=(format!("{x:.1}")) y=(format!("{:.1}", h - bottom - bh)) width=(format!("{bar:.1}")) height=(format!("{bh:.1}")) {
                            title { (d.date) ": " (d.count) }
                        }
                    }
                }
                @for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
                    text x=(format!("{:.1}", left + i as f64 * slot + slot / 2.0)) y=(format!("{:.1}", h - 8.0)) class="tick" text-anchor="middle" {
                        (d.date.get(5..).unwrap_or(&d.date))
                    }
                }
            }
        }
    }
}

const CSS: &str = "
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#fff;--pass:#1f7a3f;--find:#b3261e;--ne:#8a6d00;--gap:#c2570c}
*{box-sizing:border-box}body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:1040px;margin:0 auto;padding:28px 24px 64px}h1{font-size:24px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 12px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:24px 0 6px}h4{font-size:14px;margin:14px 0 4px}.meta{color:var(--muted);margin:0 0 10px;font-size:13.5px}.meta b{color:var(--fg);font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}.card{border:1px solid var(--line);border-radius:8px;padding:8px 16px;min-width:150px}
.card .n{font-size:26px;font-weight:650}.card.met .n{color:var(--pass)}.card.findings .n{color:var(--find)}.card.ne .n{color:var(--ne)}.card.gap .n{color:var(--gap)}
.alert{border-left:4px solid var(--find);background:#fdf1f0;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:13.5px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.badge.pass,.badge.evidenced{background:var(--pass)}.badge.findings{background:var(--find)}.badge.not_evaluable{background:var(--ne)}.badge.gap{background:var(--gap)}
.sev{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.chart{margin:8px 0 20px}.chart figcaption{font-weight:600;margin-bottom:4px}.chart svg{width:100%;height:auto}
.axis{stroke:#98a1b3}.tick{font-size:11px;fill:var(--muted)}.zero{fill:var(--find)}
.control{border:1px solid var(--line);border-radius:8px;padding:4px 16px 14px;margin:16px 0}
.control p{margin:6px 0}.muted{color:var(--muted)}code{font-size:12.5px}.gap-reason{color:var(--gap)}
.split{display:flex;gap:16px}.split>div{flex:1}
footer{margin-top:40px;color:var(--muted);font-size:13px}
@media print{.control{break-inside:avoid}}
";

fn rows_table(rows: &[Evidence]) -> Markup {
    html! {
        table.evidence {
            thead { tr { th { "Time (UTC)" } th { "Audit ID" } th { "User" } th { "Verb" } th { "Object" } th.num { "Code" } th { "Reason" } } }
            tbody {
                @for e in rows {
                    tr {
                        td { (e.ts) }
                        td { code { (e.audit_id.as_deref().unwrap_or("")) } }
                        td { (e.user_name.as_deref().unwrap_or("")) }
                        td { (e.verb.as_deref().unwrap_or("")) }
                        td { (e.object()) }
                        td.num { (e.response_code.map(|c| c.to_string()).unwrap_or_default()) }
                        td { (e.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn control_section(r: &Report, c: &ControlResult) -> Markup {
    html! {
        section.control id=(c.view) data-status=(c.status.class()) {
            h3 {
                (framework_title(&c.framework)) " " (c.control_id) ": " (c.title) " "
                span class={ "badge " (c.status.class()) } { (c.status.label()) }
            }
            p.muted { (c.reference) " · " (c.kind.as_str()) " control · severity " (c.severity) " · view " code { (c.view) } }
            p { b { "Finds: " } (c.finds) }
            p { b { "Why it matters: " } (c.why) }
            @if let Some(why) = &c.not_evaluable {
                p { b { "Not evaluable: " } (why) }
            }
            @for g in &c.gaps {
                p.gap-reason { b { "Gap: " } (g) }
            }
            @if let Some(s) = &c.summary {
                p { b { (c.rows) " evidence rows" } " from " (s.identities) " identities." }
                div.split {
                    div {
                        h4 { "Per identity" }
                        table { tbody { @for i in &s.per_identity { tr { td { (i.key) } td.num { (i.count) } } } } }
                    }
                    div {
                        h4 { "Per verb and resource" }
                        table { tbody { @for a in &s.per_action { tr { td { (a.key) } td.num { (a.count) } } } } }
                    }
                }
                h4 { "Random sample of " (c.sample.len()) " rows, for tracing" }
                p.muted { "Drawn by hashing each row with the window (" code { (r.sample_seed) } "): the same report draws the same rows. Every row: " code { "--format json" } ", " code { "csv" } " or " code { "ndjson" } "." }
                (rows_table(&c.sample))
            } @else if c.not_evaluable.is_none() && c.rows == 0 && c.kind == Kind::Finding {
                p { "No findings in the window." }
            } @else if c.kind == Kind::Finding {
                p {
                    b { (c.rows) " findings" } "; the first " (c.evidence_shown) " by time"
                    @if (c.evidence_shown as u64) < c.rows {
                        " (every row: " code { "--format json" } ", " code { "csv" } " or " code { "ndjson" } ")"
                    }
                    ":"
                }
                (rows_table(&c.evidence))
            }
        }
    }
}

/// Control ids, comma-separated, or "none".
fn ids(list: &[String]) -> Markup {
    html! {
        @if list.is_empty() { "none" }
        @for (i, id) in list.iter().enumerate() {
            @if i > 0 { ", " }
            (id)
        }
    }
}

/// The HTML report: a one-screen summary first (requirements met, with gaps, not evaluable,
/// findings to answer, per framework), then the controls, the charts and each control's detail.
pub fn html(r: &Report) -> Markup {
    let title = format!("Compliance report: {}", r.frameworks_title());
    let t = &r.totals;
    let findings_per_day: Vec<Day> = r
        .coverage
        .iter()
        .map(|d| Day {
            date: d.date.clone(),
            count: r
                .controls
                .iter()
                .filter(|c| c.status == Status::Findings)
                .flat_map(|c| &c.per_day)
                .filter(|f| f.date == d.date)
                .map(|f| f.count)
                .sum(),
        })
        .collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { main {
                h1 { (title) }
                p.meta {
                    "Window " b { (r.window_from) } " to " b { (r.window_to) } " (UTC, end exclusive) · store " b { (r.store) }
                    " at table version " b #table-version { (version_text(r.table_version)) }
                    " · scope SHA-256 " code #scope-sha256 { (r.scope_sha256) }
                    " · generated " (r.generated_at) " by " (r.generator)
                }
                @match &r.integrity {
                    Some(i) => p #integrity class=(if i.clean { "meta" } else { "alert" }) data-clean=(i.clean) { b { "Integrity: " } (i.text()) },
                    None => p.meta #integrity data-clean="unknown" { b { "Integrity: " } "not verified (--no-verify)" },
                }
                div.cards #totals {
                    div.card.met { div.n #met { (t.met) } "of " (t.controls) " requirements met" }
                    div.card.gap { div.n #gaps { (t.gaps) } "with gaps" }
                    div.card.ne { div.n #not-evaluable { (t.not_evaluable) } "not evaluable" }
                    div.card.findings { div.n #findings-to-answer { (t.findings_to_answer) } "findings to answer, in " (t.findings) " controls" }
                    div.card { div.n { (r.events_in_window) } "events in the window" }
                }
                table #summary {
                    thead { tr { th { "Framework" } th.num { "Requirements" } th.num { "Met" } th.num { "With gaps" } th.num { "Not evaluable" } th.num { "Controls with findings" } th.num { "Findings to answer" } } }
                    tbody {
                        @for f in &r.summary {
                            @let s = &f.totals;
                            tr data-framework=(f.framework) {
                                td { (f.title) }
                                td.num { (s.controls) }
                                td.num { (s.met) }
                                td.num.zero[s.gaps == 0] { (s.gaps) }
                                td.num.zero[s.not_evaluable == 0] { (s.not_evaluable) }
                                td.num.zero[s.findings == 0] { (s.findings) }
                                td.num.zero[s.findings_to_answer == 0] { (s.findings_to_answer) }
                            }
                        }
                    }
                }
                @if !r.days_without_events.is_empty() {
                    p.alert #missing-days {
                        b { (r.days_without_events.len()) " day(s) without any audit event: " }
                        (r.days_without_events.join(", ")) ". Audit logging stopped, or events were not shipped."
                    }
                }
                h2 { "By framework" }
                @for f in &r.summary {
                    section.framework id=(format!("framework-{}", f.framework)) {
                        h3 { (f.title) }
                        p { b { "Met: " } (ids(&f.met_controls)) }
                        p.gap-reason { b { "With gaps: " } (ids(&f.gap_controls)) }
                        p { b { "Findings to answer: " } (ids(&f.finding_controls)) }
                        p.muted { b { "Not evaluable: " } (ids(&f.not_evaluable_controls)) }
                    }
                }
                h2 { "Controls" }
                table #controls {
                    thead { tr { th { "Framework" } th { "Control" } th { "Title" } th { "Kind" } th { "Severity" } th { "Status" } th.num { "Rows" } } }
                    tbody {
                        @for c in &r.controls {
                            tr data-view=(c.view) data-kind=(c.kind.as_str()) {
                                td { (framework_title(&c.framework)) }
                                td { a href=(format!("#{}", c.view)) { (c.control_id) } }
                                td { (c.title) }
                                td { (c.kind.as_str()) }
                                td.sev { (c.severity) }
                                td { span class={ "badge " (c.status.class()) } { (c.status.label()) } }
                                td.num { (c.rows) }
                            }
                        }
                    }
                }
                (bar_chart("events-per-day", "Audit events per day", &r.coverage, "#3b6fd4", true))
                (bar_chart("findings-per-day", "Findings per day (finding controls)", &findings_per_day, "#b3261e", false))
                h2 { "Details" }
                @for c in &r.controls {
                    (control_section(r, c))
                }
                footer {
                    "Generated by " (r.generator) " from the audit events stored in " (r.store)
                    ". Each control is a SQL view (sql/compliance/); re-run it in " code { "auditlake sql" } " to see every row."
                }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_and_not_formulas() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("-1+2"), "'-1+2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("alice"), "alice");
        assert_eq!(md_cell("a|b*c_<x>\nd"), "a\\|b\\*c\\_\\<x\\> d");
        let m = html! { p { ("<script>alert(1)</script>") } }.into_string();
        assert_eq!(m, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    }

    #[test]
    fn json_is_indented_down_to_the_lists_and_a_row_per_line() {
        // Structs, so that the keys keep their order whatever serde_json's features.
        #[derive(Serialize)]
        struct Row {
            ts: &'static str,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            n: Vec<u8>,
        }
        #[derive(Serialize)]
        struct Control {
            view: &'static str,
            evidence: Vec<Row>,
            none: Vec<Row>,
            o: std::collections::BTreeMap<String, u8>,
        }
        #[derive(Serialize)]
        struct Top {
            window: &'static str,
            controls: Vec<Control>,
            empty: std::collections::BTreeMap<String, u8>,
        }
        let v = Top {
            window: "w",
            controls: vec![Control {
                view: "x",
                evidence: vec![
                    Row {
                        ts: "t",
                        n: vec![1, 2],
                    },
                    Row { ts: "u", n: vec![] },
                ],
                none: vec![],
                o: Default::default(),
            }],
            empty: Default::default(),
        };
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, RowsPerLine::default());
        v.serialize(&mut ser).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{
  "window": "w",
  "controls": [
    {
      "view": "x",
      "evidence": [
        {"ts":"t","n":[1,2]},
        {"ts":"u"}
      ],
      "none": [],
      "o": {}
    }
  ],
  "empty": {}
}"#
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::to_value(&v).unwrap()
        );
    }
}
