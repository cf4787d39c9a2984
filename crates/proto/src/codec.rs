//! The codec every generated client and server of `ips.v1` uses (wired by `codec_path` in
//! `build.rs`): tonic-prost's, except that a request that does not decode is `INVALID_ARGUMENT`.
//!
//! Why it exists: tonic-prost maps every decode error to `INTERNAL`, so a client sending invalid
//! UTF-8 in a string field (or any malformed protobuf) was told the server broke, and an
//! operator's alert on INTERNAL fired for a client's mistake. Decoding is the only place that
//! sees this error, before any handler runs, so the mapping cannot live in `rpc::errors` (which
//! still owns every other code); it lives here because generated code can only name a codec in
//! this crate or its dependencies. The same codec decodes responses in our clients, where a
//! malformed answer also shows as `INVALID_ARGUMENT` (the message says it did not decode).

use std::marker::PhantomData;

use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// [`tonic_prost::ProstCodec`] with decode errors answered as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct EdgeCodec<T, U> {
    types: PhantomData<(T, U)>,
}

impl<T, U> Default for EdgeCodec<T, U> {
    fn default() -> Self {
        Self { types: PhantomData }
    }
}

impl<T, U> Codec for EdgeCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = EdgeDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        EdgeDecoder { types: PhantomData }
    }
}

/// Decodes `U`, answering a malformed message as the caller's error.
#[derive(Debug, Clone)]
pub struct EdgeDecoder<U> {
    types: PhantomData<U>,
}

impl<U: prost::Message + Default> Decoder for EdgeDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buffer).map(Some).map_err(|error| {
            Status::invalid_argument(format!(
                "the message is not valid protobuf for its type (strings must be UTF-8): {error}"
            ))
        })
    }
}
