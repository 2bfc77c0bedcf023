//! A schema whose built-in views are planned the first time a query names them.
//!
//! Planning the 51 shipped views took about 50 ms of every `auditlake sql -c` (measured: 60 ms for
//! `SELECT 1`, of which about 10 ms is the rest of start-up), which is most of the time of a
//! question bounded to one hour. [`LazyViewSchema`] keeps each view's `CREATE VIEW` text and plans
//! it on the first [`SchemaProvider::table`] call, as `CREATE VIEW` would (type coercion, unique
//! column names), then caches the [`ViewTable`]. Everything else (tables, views the user creates)
//! lives in an ordinary [`MemorySchemaProvider`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::optimizer::Analyzer;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;

/// Gives a copy of the session's current state (tables, functions, options), or `None` once the
/// session is gone.
pub(crate) type StateFn = Box<dyn Fn() -> Option<SessionState> + Send + Sync>;

/// See the [module documentation](self).
pub(crate) struct LazyViewSchema {
    inner: MemorySchemaProvider,
    /// View name → (what to call it in an error, its `CREATE VIEW` statement), not yet planned.
    pending: Mutex<BTreeMap<String, (String, &'static str)>>,
    state: OnceLock<StateFn>,
}

impl std::fmt::Debug for LazyViewSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyViewSchema")
            .field("tables", &self.inner.table_names())
            .field("pending", &self.pending_names())
            .finish()
    }
}

impl LazyViewSchema {
    pub(crate) fn new() -> Self {
        Self {
            inner: MemorySchemaProvider::new(),
            pending: Mutex::new(BTreeMap::new()),
            state: OnceLock::new(),
        }
    }

    /// Where the state to plan with comes from; set once, right after the session is built
    /// (the schema lives inside the session, so it holds the state weakly).
    pub(crate) fn set_state(&self, state: StateFn) {
        let _ = self.state.set(state);
    }

    /// Adds a view to plan on first use. `what` names it in errors ("built-in view x").
    pub(crate) fn add_pending(&self, name: &str, what: String, sql: &'static str) {
        self.lock().insert(name.to_owned(), (what, sql));
    }

    /// Plans every pending view now (tests and `\d` want all of them; a broken view is a bug that
    /// should fail loudly).
    pub(crate) async fn plan_all(&self) -> Result<()> {
        for name in self.pending_names() {
            self.table(&name).await?;
        }
        Ok(())
    }

    fn pending_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (String, &'static str)>> {
        // A panic while holding this lock cannot leave the map half-updated (single insert or
        // remove), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn plan(&self, what: &str, sql: &str) -> Result<Arc<dyn TableProvider>> {
        let state = self
            .state
            .get()
            .and_then(|f| f())
            .ok_or_else(|| DataFusionError::Internal(format!("{what}: the session is gone")))?;
        let context = |e: DataFusionError| {
            DataFusionError::Context(format!("{what} does not plan"), Box::new(e))
        };
        let plan = state.create_logical_plan(sql).await.map_err(context)?;
        let LogicalPlan::Ddl(DdlStatement::CreateView(cv)) = plan else {
            return Err(DataFusionError::Internal(format!(
                "{what} is not a CREATE VIEW statement"
            )));
        };
        let input = Analyzer::with_rules(vec![Arc::new(TypeCoercion::new())])
            .execute_and_check(
                Arc::unwrap_or_clone(cv.input),
                &ConfigOptions::default(),
                |_, _| {},
            )
            .map_err(context)?;
        let mut seen = HashSet::new();
        for f in input.schema().fields() {
            if !seen.insert(f.name().as_str()) {
                return Err(context(DataFusionError::Plan(format!(
                    "two columns are named {}",
                    f.name()
                ))));
            }
        }
        Ok(Arc::new(ViewTable::new(input, cv.definition)))
    }
}

#[async_trait]
impl SchemaProvider for LazyViewSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(self.pending_names());
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.inner.table(name).await? {
            return Ok(Some(t));
        }
        let Some((what, sql)) = self.lock().get(name).cloned() else {
            return Ok(None);
        };
        // Planned outside the lock: a view's plan asks this schema for the views it reads.
        let table = self.plan(&what, sql).await?;
        // Two queries may plan the same view at once; the first registered wins, so every
        // caller sees one table.
        let registered = {
            let mut pending = self.lock();
            if pending.remove(name).is_some() {
                self.inner
                    .register_table(name.to_owned(), Arc::clone(&table))?;
                true
            } else {
                false
            }
        };
        if registered {
            Ok(Some(table))
        } else {
            self.inner.table(name).await
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.lock().contains_key(&name) {
            return Err(DataFusionError::Execution(format!(
                "The table {name} already exists"
            )));
        }
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.lock().remove(name).is_some() {
            // Never planned, so there is no table to hand back; dropping it is what was asked.
            return Ok(None);
        }
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) || self.lock().contains_key(name)
    }
}
