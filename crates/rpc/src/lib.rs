//! The gRPC edge shared by every service: error mapping (the one place where errors become gRPC
//! codes), caller identity, request-field parsing, the agency submit-and-wait path, and the
//! server set-up (health, reflection, deadlines, size limits, graceful stop).
//!
//! Services stay thin: an RPC handler parses its request with [`fields`], builds a domain
//! [`domain::Submission`], and hands it to [`submit::AgencySubmitter`].

pub mod access;
pub mod agency;
pub mod errors;
pub mod fields;
pub mod identity;
pub mod server;
pub mod submit;

pub use server::{ServerConfig, ServerHandle};
pub use submit::{AgencyEdge, AgencySubmitter, SubmitConfig};
