//! Cross-service tests of IPS Samverkan, run against real PostgreSQL and NATS.
//!
//! The test files live in this folder and start whole stacks through [`testkit`]. This library
//! part is empty on purpose: Cargo needs a target for the package that holds the tests.
