//! Random protobuf encodings of every request message, built from the wire contract itself
//! (`proto::FILE_DESCRIPTOR_SET`), so a field added to a request is fuzzed without anyone
//! touching this program. Each field is present or absent, repeated fields get zero to many
//! entries (packed or not), and a case may carry a duplicated field (the last one wins) or a
//! field this build does not know (skipped). The bytes are then decoded by the generated
//! prost type, exactly as tonic decodes a request.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

use crate::json;
use crate::values::{self, Shape};

/// The four agency services whose every method is fuzzed.
pub const AGENCY_SERVICES: [&str; 4] = [
    "MunicipalityService",
    "ForsakringskassanService",
    "ArbetsformedlingenService",
    "PsychiatryService",
];

/// Deepest nesting of messages generated (requests nest two levels: write → context).
const NESTING_DEPTH_MAX: usize = 4;
/// Most entries a repeated field gets.
const REPEATED_ENTRIES_MAX: usize = 12;

/// The `ips.v1` wire contract, indexed by name.
#[derive(Debug)]
pub struct Contract {
    messages: BTreeMap<String, DescriptorProto>,
    enum_values: BTreeMap<String, i32>,
    /// `(service, method, input message name)` of every agency service method.
    pub methods: Vec<(String, String, String)>,
}

impl Contract {
    /// Reads the descriptor set the proto crate embeds.
    pub fn load() -> anyhow::Result<Self> {
        let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)?;
        let mut messages = BTreeMap::new();
        let mut enum_values = BTreeMap::new();
        let mut methods = Vec::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                messages.insert(format!(".{package}.{}", message.name()), message.clone());
            }
            for enumeration in &file.enum_type {
                let largest = enumeration
                    .value
                    .iter()
                    .map(|value| value.number())
                    .max()
                    .unwrap_or(0);
                enum_values.insert(format!(".{package}.{}", enumeration.name()), largest);
            }
            for service in &file.service {
                if AGENCY_SERVICES.contains(&service.name()) {
                    for method in &service.method {
                        methods.push((
                            service.name().to_owned(),
                            method.name().to_owned(),
                            method.input_type().to_owned(),
                        ));
                    }
                }
            }
        }
        Ok(Self {
            messages,
            enum_values,
            methods,
        })
    }

    /// Random encodings of the message named `type_name` (`.ips.v1.DateRequest`).
    pub fn message(&self, type_name: &str) -> BoxedStrategy<Vec<u8>> {
        self.message_at(type_name, 0)
    }

    fn message_at(&self, type_name: &str, depth: usize) -> BoxedStrategy<Vec<u8>> {
        let Some(message) = self.messages.get(type_name) else {
            return Just(Vec::new()).boxed();
        };
        let fields: Vec<BoxedStrategy<Vec<u8>>> = message
            .field
            .iter()
            .map(|field| {
                let tag = u32::try_from(field.number()).unwrap_or(1);
                let value = self.field_value(field, depth);
                if field.label() == Label::Repeated {
                    repeated(tag, field.r#type(), value)
                } else {
                    prop_oneof![
                        1 => Just(Vec::new()),
                        6 => value.prop_map(move |value| value.encode(tag)),
                    ]
                    .boxed()
                }
            })
            .collect();
        let field_count = fields.len();
        let extra = prop_oneof![
            20 => Just(Vec::new()),
            1 => (proptest::sample::select(vec![1u32, 2, 3, 4, 5, 99, 536_870_911]), any::<u64>())
                .prop_map(|(tag, value)| FieldValue::Varint(value).encode(tag)),
            1 => (proptest::sample::select(vec![6u32, 7, 42]), values::hostile_text())
                .prop_map(|(tag, text)| FieldValue::Bytes(text.into_bytes()).encode(tag)),
        ];
        (
            fields,
            extra,
            any::<proptest::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(move |(encoded_fields, extra, duplicate, duplicate_one)| {
                let mut bytes: Vec<u8> = encoded_fields.concat();
                if duplicate_one && field_count > 0 {
                    bytes.extend_from_slice(&encoded_fields[duplicate.index(field_count)]);
                }
                bytes.extend_from_slice(&extra);
                bytes
            })
            .boxed()
    }

    fn field_value(
        &self,
        field: &prost_types::FieldDescriptorProto,
        depth: usize,
    ) -> BoxedStrategy<FieldValue> {
        match field.r#type() {
            Type::String => {
                let shape = Shape::of_field(field.name());
                let text = if shape == Shape::BodyJson {
                    json::corrected_body()
                } else {
                    values::text(shape)
                };
                prop_oneof![
                    300 => text.prop_map(|text| FieldValue::Bytes(text.into_bytes())),
                    // Not UTF-8: prost refuses the message.
                    1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(|mut bytes| {
                        bytes.push(0xff);
                        FieldValue::Bytes(bytes)
                    }),
                ]
                .boxed()
            }
            Type::Bytes => proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(FieldValue::Bytes)
                .boxed(),
            Type::Bool => prop_oneof![
                8 => any::<bool>().prop_map(|value| FieldValue::Varint(u64::from(value))),
                1 => any::<u64>().prop_map(FieldValue::Varint),
            ]
            .boxed(),
            Type::Uint32 | Type::Uint64 | Type::Fixed32 | Type::Fixed64 => values::uint32()
                .prop_map(|value| FieldValue::Varint(u64::from(value)))
                .boxed(),
            Type::Enum => {
                let known = self
                    .enum_values
                    .get(field.type_name())
                    .copied()
                    .unwrap_or(1);
                values::enumeration(known)
                    // A negative int32 is sign-extended to ten bytes on the wire.
                    .prop_map(|value| FieldValue::Varint(i64::from(value) as u64))
                    .boxed()
            }
            Type::Message if depth < NESTING_DEPTH_MAX => self
                .message_at(field.type_name(), depth + 1)
                .prop_map(FieldValue::Bytes)
                .boxed(),
            Type::Message => Just(FieldValue::Bytes(Vec::new())).boxed(),
            // Signed and floating types do not occur in the agency requests; anything will do.
            _ => any::<u64>().prop_map(FieldValue::Varint).boxed(),
        }
    }
}

/// One encoded value, before its key.
#[derive(Clone, Debug)]
enum FieldValue {
    Varint(u64),
    Bytes(Vec<u8>),
}

impl FieldValue {
    fn encode(&self, tag: u32) -> Vec<u8> {
        let mut buffer = Vec::new();
        match self {
            FieldValue::Varint(value) => {
                encode_key(tag, WireType::Varint, &mut buffer);
                encode_varint(*value, &mut buffer);
            }
            FieldValue::Bytes(bytes) => {
                encode_key(tag, WireType::LengthDelimited, &mut buffer);
                encode_varint(bytes.len() as u64, &mut buffer);
                buffer.extend_from_slice(bytes);
            }
        }
        buffer
    }
}

/// A repeated field: entries one by one, or (for varints) packed into one length-delimited
/// value, as proto3 writers do.
fn repeated(
    tag: u32,
    field_type: Type,
    entry: BoxedStrategy<FieldValue>,
) -> BoxedStrategy<Vec<u8>> {
    let packable = matches!(field_type, Type::Enum | Type::Uint32 | Type::Bool);
    (
        proptest::collection::vec(entry, 0..REPEATED_ENTRIES_MAX),
        any::<bool>(),
    )
        .prop_map(move |(entries, packed)| {
            if packed && packable {
                let mut payload = Vec::new();
                for entry in &entries {
                    if let FieldValue::Varint(value) = entry {
                        encode_varint(*value, &mut payload);
                    }
                }
                FieldValue::Bytes(payload).encode(tag)
            } else {
                entries.iter().flat_map(|entry| entry.encode(tag)).collect()
            }
        })
        .boxed()
}

/// Raw bytes as a request: random, or a real encoding cut short or with bytes flipped.
pub fn mangled(encoding: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => (encoding.clone(), any::<proptest::sample::Index>())
            .prop_map(|(bytes, cut)| bytes[..cut.index(bytes.len() + 1)].to_vec()),
        1 => (encoding, proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4))
            .prop_map(|(mut bytes, flips)| {
                if !bytes.is_empty() {
                    for (at, byte) in flips {
                        let index = at.index(bytes.len());
                        bytes[index] ^= byte;
                    }
                }
                bytes
            }),
    ]
    .boxed()
}
