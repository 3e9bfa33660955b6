//! Migration from Kadeploy 3.3: the four tables of its database (spec §9: environments, rights, node states
//! and the deployment log) read from a [`LegacySource`] and imported into our store in one transaction.
//!
//! Importing is idempotent: environments are matched by (owner, name, version) and take the imported
//! values, rights are triples, a node keeps the most recent of its stored and imported states, and a log row
//! is added only when the store holds fewer identical rows for its (workflow, node) than the source. Rows
//! that cannot be mapped are reported with their identity and the reason; nothing else is left out.

mod envs;
mod legacy;
mod report;
mod run;

pub use envs::{MappedEnv, map_env};
pub use legacy::{LegacyEnv, LegacyLog, LegacyNode, LegacyRight};
pub use report::{Issue, Report, TABLES, TableCounts};
pub use run::import;

use crate::store::StoreError;

/// A row as the source read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched<T> {
    /// Decoded.
    Row(T),
    /// Not decodable (a NULL where Kadeploy never writes one, text that is not UTF-8, a number out of range).
    Unreadable {
        /// The row's key columns, as far as they could be read.
        identity: String,
        /// What was wrong.
        reason: String,
    },
}

/// The rows of one table, streamed.
pub type Rows<'a, T> = Box<dyn Iterator<Item = Result<Fetched<T>, SourceError>> + 'a>;

/// A failure of the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The database could not be reached or refused the login.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The database does not have the Kadeploy 3.3 schema.
    #[error("{0}")]
    Schema(String),
    /// A query failed or the connection broke while reading `table`.
    #[error("reading {table}: {message}")]
    Query {
        /// The table.
        table: &'static str,
        /// The driver's message.
        message: String,
    },
}

/// A Kadeploy 3.3 database.
pub trait LegacySource {
    /// `environments`, by increasing id.
    fn environments(&mut self) -> Result<Rows<'_, LegacyEnv>, SourceError>;
    /// `rights`.
    fn rights(&mut self) -> Result<Rows<'_, LegacyRight>, SourceError>;
    /// `nodes`, grouped by hostname, the most recent `date` first in each group.
    fn nodes(&mut self) -> Result<Rows<'_, LegacyNode>, SourceError>;
    /// `log`, grouped by wid.
    fn log(&mut self) -> Result<Rows<'_, LegacyLog>, SourceError>;
}

/// Errors of an import.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the Kadeploy 3.3 database failed.
    #[error("Kadeploy 3.3 database: {0}")]
    Source(#[from] SourceError),
    /// Writing the store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}
