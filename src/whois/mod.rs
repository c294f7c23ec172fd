//! WHOIS (RFC 3912): answers for domain and handle queries, and the TCP server.
//!
//! Input: one query line (a domain name, as A-label or U-label, or a contact
//! handle) from a TCP client or the command line. Output: a 7-bit ASCII
//! answer (`%` comment header with the registry, the terms of use and the
//! query time in UTC; a domain or person block; or a no-match or error
//! line), CRLF on the wire. Invariants: the registry database is only read,
//! through read-only connections, one read transaction per answer; a
//! person's hidden fields (`whoishidephone`, `whoishidefax`, `whoishide`)
//! and remarks never leave the registry; the server bounds the query size,
//! the time to send it, the connections at once and each client's rate.
//! Parts: `query` (parse and normalise), `answer` (texts), `limit` (token
//! buckets), `service` (the lookup), `server` (TCP).

mod answer;
mod limit;
mod query;
mod server;
mod service;

pub use answer::{Answer, Outcome, Preamble};
pub use limit::{RateLimiter, Verdict, client_key};
pub use query::{MAX_QUERY_BYTES, Query, QueryError, parse_query};
pub use server::{MAX_CLIENTS, READ_TIMEOUT, Responder, ServerSettings, serve};
pub use service::Service;

use crate::store::StoreError;

/// A fault of ours while answering (never the client's mistake).
#[derive(Debug, thiserror::Error)]
pub enum WhoisError {
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored date is not RFC 3339 (a bug or tampering).
    #[error("stored date {0} is not RFC 3339")]
    BadDate(String),
}
