//! The compliance side of auditlake, shared by every front end (`report`, `schedule`):
//!
//! - [`controls`]: the controls shipped in `sql/compliance/` ([`CONTROLS`]), each an evidence
//!   control or a finding control;
//! - [`scope`]: what the controls take as regulated namespaces, administrators, automation and
//!   business hours, and the SQL functions that read it;
//! - [`report`]: the evaluation of the controls over a window into a [`Report`];
//! - [`render`]: the report as JSON, NDJSON, CSV, Markdown and HTML.
//!
//! The crate runs SQL through an [`Engine`] (the query crate's session implements it), so that it
//! does not depend on how the store is read.

pub mod controls;
mod error;
pub mod kept;
pub mod render;
pub mod report;
pub mod scope;

pub use controls::{CONTROLS, Control, Kind};
pub use error::{Error, Result};
pub use report::{Engine, Report, Request};
pub use scope::Scope;
