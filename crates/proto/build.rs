//! Compiles `proto/ips/v1/*.proto` with protox (a pure-Rust protobuf compiler), so building the
//! workspace needs no system `protoc`. The file descriptor set is kept for gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a build script compiled for
    // a checkout elsewhere (a shared CARGO_TARGET_DIR) must still read this checkout's files.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files: Vec<PathBuf> = std::fs::read_dir(proto_root.join("ips/v1"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "proto")
        })
        .collect();
    files.sort();
    let descriptor_set = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("ips_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptor_set),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Decode errors are the caller's (INVALID_ARGUMENT), not ours (tonic-prost says INTERNAL).
        .codec_path("crate::codec::EdgeCodec")
        .compile_fds(descriptor_set)?;
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}
