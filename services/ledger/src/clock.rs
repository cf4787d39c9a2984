//! The ledger's notion of "now" and "today", injectable so tests can control it (the expiry of
//! green-light decisions, the business day turning at Stockholm midnight). The clocks are
//! `rpc::clock`'s, shared with the agency services; this module keeps the ledger's paths.

pub use rpc::clock::{business_date, Clock, ManualClock, SystemClock};
