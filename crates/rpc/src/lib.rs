//! The gRPC edge shared by every service: error mapping (the one place where errors become gRPC
//! codes), caller identity, request-field parsing, the agency submit-and-wait path, the clocks
//! services are given, and the server set-up (health, reflection, deadlines, size limits,
//! graceful stop).
//!
//! This crate has no database dependency: the agency services link it and must not link sqlx
//! (ARCHITECTURE.md). The ledger classifies its store's errors itself and hands the class to
//! [`errors::from_storage`].
//!
//! Services stay thin: an RPC handler parses its request with [`fields`], builds a domain
//! [`domain::Submission`], and hands it to [`submit::AgencySubmitter`].

pub mod access;
pub mod agency;
pub mod clock;
pub mod errors;
pub mod fields;
pub mod identity;
pub mod server;
pub mod submit;

pub use server::{ServerConfig, ServerHandle};
pub use submit::{AgencyEdge, AgencySubmitter, SubmitConfig};
