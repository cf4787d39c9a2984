//! The canonical JSON of a typed value, written straight from its `Serialize` impl. Every link
//! of the hash chain is hashed over the canonical form of its payload, and every entry a replay
//! shows carries its body in that form; going through `serde_json::Value` first (a map node and
//! a key string per field, then a walk and a sort, then freeing it all) cost as much as the
//! rendering it served. This writer prints exactly what `chain::canonical_json(&to_value(x))`
//! prints (keys sorted by their UTF-8 bytes at every depth, a repeated key's last value kept,
//! no insignificant whitespace, strings and numbers as serde_json writes them); the property
//! tests hold the two equal over random histories, so stored hashes cannot change.
//!
//! Each object's field values are written into one scratch buffer as they come, then copied out
//! in key order: one buffer and one field list per object, whatever its number of fields.
//! A map's keys arrive as values to be copied into strings, so JSON that already is a `Value`
//! (what is read back from the store) is printed by walking it (`chain::canonical_json`,
//! `chain::stored_payload_hash`), which is faster for it.

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{self, Serialize};
use serde_json::Error;

/// `value` in canonical form.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    to_canonical_json_without(value, None)
}

/// `value` in canonical form, leaving out its own top-level key `skipped_key` (a chain link
/// is hashed over its payload without the `hash` it will carry).
pub fn to_canonical_json_without<T: Serialize + ?Sized>(
    value: &T,
    skipped_key: Option<&'static str>,
) -> Result<String, Error> {
    let mut output = Vec::with_capacity(256);
    value.serialize(Canonical {
        output: &mut output,
        skipped_key,
    })?;
    // serde_json writes UTF-8 only, and keys and structure are ASCII or copied strings.
    String::from_utf8(output).map_err(|error| ser::Error::custom(error.to_string()))
}

/// Writes one value into `output`.
struct Canonical<'a> {
    output: &'a mut Vec<u8>,
    /// A key left out of this value's own object (not of nested ones).
    skipped_key: Option<&'static str>,
}

impl<'a> Canonical<'a> {
    fn nested(output: &'a mut Vec<u8>) -> Self {
        Canonical {
            output,
            skipped_key: None,
        }
    }

    /// A scalar exactly as serde_json prints it.
    fn json(&mut self) -> serde_json::Serializer<&mut Vec<u8>> {
        serde_json::Serializer::new(&mut *self.output)
    }

    /// A scalar exactly as it prints after a round through `Value` (numbers whose `Value`
    /// form differs from their direct form, like an `f32` or a `u128`).
    fn through_value<T: Serialize>(self, value: T) -> Result<(), Error> {
        let value = serde_json::to_value(value)?;
        serde_json::to_writer(&mut *self.output, &value)
    }

    fn object(self, variant: Option<&'static str>) -> Object<'a> {
        Object {
            output: self.output,
            scratch: Vec::new(),
            fields: Vec::new(),
            pending_key: None,
            skipped_key: self.skipped_key,
            variant,
        }
    }

    /// `{"variant":` before a value that ends with `}`.
    fn open_variant(&mut self, variant: &'static str) -> Result<(), Error> {
        self.output.push(b'{');
        ser::Serializer::serialize_str(&mut self.json(), variant)?;
        self.output.push(b':');
        Ok(())
    }
}

/// Scalars serde_json prints the same directly as through `Value`.
macro_rules! scalars_as_serde_json_prints_them {
    ($($method:ident: $value:ty),*) => {$(
        fn $method(mut self, value: $value) -> Result<(), Error> {
            ser::Serializer::$method(&mut self.json(), value)
        }
    )*};
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    scalars_as_serde_json_prints_them!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_char: char,
        serialize_str: &str
    );

    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.through_value(value)
    }
    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.through_value(value)
    }
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        self.through_value(value)
    }
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        self.through_value(value)
    }
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        // `Value` holds bytes as an array of numbers, as serde_json prints them.
        self.through_value(value)
    }
    fn serialize_none(mut self) -> Result<(), Error> {
        ser::Serializer::serialize_unit(&mut self.json())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), Error> {
        ser::Serializer::serialize_unit(&mut self.json())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant)?;
        value.serialize(Canonical::nested(&mut *self.output))?;
        self.output.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, Error> {
        self.output.push(b'[');
        Ok(Array {
            output: self.output,
            first: true,
            closing: "]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, Error> {
        self.open_variant(variant)?;
        self.output.push(b'[');
        Ok(Array {
            output: self.output,
            first: true,
            closing: "]}",
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(self.object(None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object<'a>, Error> {
        Ok(self.object(None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, Error> {
        Ok(self.object(Some(variant)))
    }
}

/// An array: items in their order, each canonical.
struct Array<'a> {
    output: &'a mut Vec<u8>,
    first: bool,
    closing: &'static str,
}

impl Array<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.output.push(b',');
        }
        self.first = false;
        value.serialize(Canonical::nested(&mut *self.output))
    }

    fn close(self) -> Result<(), Error> {
        self.output.extend_from_slice(self.closing.as_bytes());
        Ok(())
    }
}

/// serde names the same "next item" differently for each kind of sequence.
macro_rules! array_items {
    ($($kind:ident::$item:ident),*) => {$(
        impl ser::$kind for Array<'_> {
            type Ok = ();
            type Error = Error;
            fn $item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.item(value)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

array_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object: each field's value written into `scratch` as it comes, then all copied out in
/// key order.
struct Object<'a> {
    output: &'a mut Vec<u8>,
    scratch: Vec<u8>,
    fields: Vec<(Cow<'static, str>, Range<usize>)>,
    /// A map's key, waiting for its value.
    pending_key: Option<Cow<'static, str>>,
    skipped_key: Option<&'static str>,
    /// A struct variant's name: the object is printed as `{"variant":{…}}`.
    variant: Option<&'static str>,
}

impl Object<'_> {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        if self.skipped_key == Some(key.as_ref()) {
            return Ok(());
        }
        let start = self.scratch.len();
        value.serialize(Canonical::nested(&mut self.scratch))?;
        self.fields.push((key, start..self.scratch.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), Error> {
        // Stable, so of a repeated key the last written stays last, and is the one kept (as
        // `Value`'s map keeps the last insert).
        self.fields
            .sort_by(|left, right| left.0.as_bytes().cmp(right.0.as_bytes()));
        if let Some(variant) = self.variant {
            self.output.push(b'{');
            ser::Serializer::serialize_str(
                &mut serde_json::Serializer::new(&mut *self.output),
                variant,
            )?;
            self.output.push(b':');
        }
        self.output.push(b'{');
        let mut first = true;
        for (index, (key, range)) in self.fields.iter().enumerate() {
            if self
                .fields
                .get(index + 1)
                .is_some_and(|(next_key, _)| next_key == key)
            {
                continue;
            }
            if !first {
                self.output.push(b',');
            }
            first = false;
            ser::Serializer::serialize_str(
                &mut serde_json::Serializer::new(&mut *self.output),
                key,
            )?;
            self.output.push(b':');
            self.output.extend_from_slice(&self.scratch[range.clone()]);
        }
        self.output.push(b'}');
        if self.variant.is_some() {
            self.output.push(b'}');
        }
        Ok(())
    }
}

/// A struct and a struct variant take their fields alike.
macro_rules! object_fields {
    ($($kind:ident),*) => {$(
        impl ser::$kind for Object<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(Cow::Borrowed(key), value)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

object_fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.pending_key = Some(Cow::Owned(key.serialize(MapKey)?));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value came without its key"))?;
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A map key as `Value` takes it: a string, or a number, boolean or character printed as one.
struct MapKey;

fn key_must_be_a_string() -> Error {
    <Error as ser::Error>::custom("key must be a string")
}

/// Keys `Value` takes by printing them.
macro_rules! keys_printed_as_strings {
    ($($method:ident: $value:ty),*) => {$(
        fn $method(self, value: $value) -> Result<String, Error> {
            Ok(value.to_string())
        }
    )*};
}

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    keys_printed_as_strings!(
        serialize_char: char,
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );

    fn serialize_str(self, value: &str) -> Result<String, Error> {
        Ok(value.to_owned())
    }
    fn serialize_f32(self, _value: f32) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _value: f64) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;
    use crate::chain::canonical_json;

    /// The one check: the direct writer prints what the `Value` route prints.
    fn check<T: Serialize>(value: &T) {
        let through_value = serde_json::to_value(value).map(|value| canonical_json(&value));
        let direct = to_canonical_json(value);
        match (through_value, direct) {
            (Ok(expected), Ok(written)) => assert_eq!(written, expected),
            (Err(_), Err(_)) => {}
            (expected, written) => panic!("expected {expected:?}, written {written:?}"),
        }
    }

    #[derive(Serialize)]
    #[serde(tag = "type")]
    enum Tagged {
        Plain {
            zeta: u8,
            alpha: Option<String>,
            middle: Vec<Inner>,
        },
        Empty,
        Wrapping(Inner),
    }

    #[derive(Serialize)]
    struct Inner {
        y: i64,
        x: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<bool>,
    }

    #[derive(Serialize)]
    enum External {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { b: u8, a: u8 },
    }

    #[derive(Serialize)]
    struct Flattened {
        type_: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    }

    #[derive(Serialize)]
    struct Repeats {
        a: u8,
        #[serde(flatten)]
        rest: HashMap<&'static str, u8>,
    }

    #[test]
    fn prints_what_the_value_route_prints() {
        check(&Tagged::Plain {
            zeta: 7,
            alpha: Some("å \"quoted\" \u{1f} 🦀".into()),
            middle: vec![
                Inner {
                    y: -3,
                    x: "x",
                    maybe: None,
                },
                Inner {
                    y: i64::MIN,
                    x: "\u{202E}",
                    maybe: Some(false),
                },
            ],
        });
        check(&Tagged::Plain {
            zeta: 0,
            alpha: None,
            middle: Vec::new(),
        });
        check(&Tagged::Empty);
        check(&Tagged::Wrapping(Inner {
            y: 1,
            x: "",
            maybe: Some(true),
        }));
        for external in [
            External::Unit,
            External::Newtype(u32::MAX),
            External::Tuple(1, "two".into()),
            External::Struct { b: 2, a: 1 },
        ] {
            check(&external);
        }
        check(&json!({"b": 1, "a": {"d": [true, null, "x"], "c": "å"}, "": [[], {}]}));
        check(&Flattened {
            type_: 1,
            rest: BTreeMap::from([("a".into(), json!(1)), ("type_".into(), json!("later"))]),
        });
        check(&Repeats {
            a: 1,
            rest: HashMap::from([("a", 2), ("b", 3)]),
        });
        check(&BTreeMap::from([(3_u8, "three"), (10, "ten"), (2, "two")]));
        check(&BTreeMap::from([(true, 1), (false, 0)]));
        check(&(1_u128 << 70));
        check(&0.1_f32);
        check(&f64::NAN);
        check(&vec![u64::MAX]);
        check(&'é');
        check(&());
        check(&BTreeMap::from([((1, 2), 3)]));
    }

    #[test]
    fn leaves_out_only_the_top_level_key_it_is_asked_to() {
        let value = json!({"hash": "h", "b": {"hash": "nested"}, "a": 1});
        assert_eq!(
            to_canonical_json_without(&value, Some("hash")).ok(),
            Some(r#"{"a":1,"b":{"hash":"nested"}}"#.to_owned())
        );
    }
}
