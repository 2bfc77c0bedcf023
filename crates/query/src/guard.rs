//! SQL cannot write to the store.
//!
//! Two layers, so that a missed plan shape still cannot write:
//! - [`check_plan`] walks the whole logical plan (below `EXPLAIN`, `EXPLAIN ANALYZE`, subqueries)
//!   and refuses every write whose target resolves into the store: `INSERT`/`UPDATE`/`DELETE` on
//!   `audit_events` or on a table over the store's files, `COPY … TO` a location in the store, and
//!   `CREATE EXTERNAL TABLE` over one. Locations are resolved as DataFusion itself resolves them
//!   ([`ListingTableUrl::parse`]: relative paths, `file://` URLs, percent-encoding, `..`), then
//!   judged after symlinks by [`StoreBounds`]; a statement's text is never compared.
//! - The session reaches files only through [`StoreRegistry`], which hands out the store's object
//!   store wrapped in [`auditlake_store::ReadOnlyUnder`] (every put, delete, copy or rename below
//!   the store's root fails) and maps every `file://` host spelling to that one local store.

use std::sync::Arc;

use auditlake_store::Store;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use object_store::ObjectStore;
use url::Url;

use crate::table::AuditEventsTable;

/// Refuses any write into the store anywhere in `plan`.
pub(crate) fn check_plan(plan: &LogicalPlan, store: &Store) -> Result<()> {
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Dml(dml) => {
                let provider = source_as_provider(&dml.target)?;
                let over_store = provider.is::<AuditEventsTable>()
                    || provider.downcast_ref::<ListingTable>().is_some_and(|t| {
                        t.table_paths().iter().any(|u| url_in_store(u, store))
                    });
                if over_store {
                    return Err(DataFusionError::Plan(format!(
                        "{} on {} refused: the audit store is read-only through SQL (write results elsewhere with COPY (SELECT …) TO 'file')",
                        dml.op, dml.table_name
                    )));
                }
            }
            LogicalPlan::Copy(copy) if location_in_store(&copy.output_url, store)? => {
                return Err(DataFusionError::Plan(format!(
                    "COPY into the audit store ({}) refused: the store is written only by `auditlake ingest` and its maintenance commands",
                    copy.output_url
                )));
            }
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(t)) => {
                for location in &t.locations {
                    if location_in_store(location, store)? {
                        return Err(DataFusionError::Plan(format!(
                            "CREATE EXTERNAL TABLE over the audit store ({location}) refused: query the store through audit_events"
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// Whether a location, spelled as a user may spell it in SQL, resolves into the store.
fn location_in_store(location: &str, store: &Store) -> Result<bool> {
    Ok(url_in_store(&ListingTableUrl::parse(location)?, store))
}

fn url_in_store(url: &ListingTableUrl, store: &Store) -> bool {
    let u: &Url = url.as_ref();
    let same_object_store = if store.is_local() {
        is_local_file(u)
    } else {
        let own = store.object_store_url();
        u.scheme().eq_ignore_ascii_case(own.scheme())
            && u.host_str().map(str::to_ascii_lowercase)
                == own.host_str().map(str::to_ascii_lowercase)
            && u.port() == own.port()
    };
    same_object_store && store.bounds().contains(url.prefix())
}

/// `file:///…` and `file://localhost/…` name the same local files.
fn is_local_file(u: &Url) -> bool {
    u.scheme().eq_ignore_ascii_case("file")
        && matches!(u.host_str(), None | Some("") | Some("localhost"))
}

/// The session's object stores: the store's own, read-only below its root, under its URL, and
/// for a local store every `file://` spelling mapped to that same guarded local filesystem.
#[derive(Debug)]
pub(crate) struct StoreRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl StoreRegistry {
    pub(crate) fn new(store: &Store) -> Self {
        let inner = DefaultObjectStoreRegistry::new();
        inner.register_store(&store.object_store_url(), store.read_only_object_store());
        Self { inner }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        // Only the session's set-up registers stores; replacing the guarded one is not allowed.
        if self.inner.get_store(url).is_ok() {
            return None;
        }
        self.inner.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if url.scheme().eq_ignore_ascii_case("file") {
            if !is_local_file(url) {
                return Err(DataFusionError::Plan(format!(
                    "{url}: a file URL must name a local file (file:///path)"
                )));
            }
            let local =
                Url::parse("file:///").map_err(|e| DataFusionError::External(Box::new(e)))?;
            return self.inner.get_store(&local);
        }
        self.inner.get_store(url)
    }
}
