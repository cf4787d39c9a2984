//! Generated gRPC types and stubs for `ips.v1`, the only wire contract of IPS Samverkan.
//!
//! Generated from `proto/` at build time; nothing here is hand-written except this wrapper,
//! [`codec`] (the codec the generated code uses) and [`wire`] (the one mapping between the wire
//! enums and the domain's).
//! Keep these types at the service edge: the domain has its own types (DESIGN.md §7, invariant 8).

#![allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]

pub mod codec;
pub mod wire;

/// Package `ips.v1`.
pub mod ips {
    pub mod v1 {
        tonic::include_proto!("ips.v1");
    }
}

pub use ips::v1;

/// The encoded file descriptor set, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ips_descriptor.bin"));
