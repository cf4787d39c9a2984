//! The tamper-evident hash chain of a participant's history (DOMAIN.md §7).
//!
//! Each stored entry carries `prev_hash` and `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of
//! the stored payload without its `hash` field)`. The hash is taken over the stored JSON value,
//! not over Rust types, so verification needs no knowledge of event schemas: an auditor's tool,
//! an old ledger or a new one all agree. The canonical form sorts object keys and prints no
//! whitespace, so it survives PostgreSQL's `jsonb` reordering.
//!
//! Stored payloads must not contain floating-point numbers (their text form is not canonical);
//! the domain uses integers (percent, hours) throughout.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The `prev_hash` of a participant's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `value` in canonical form: keys sorted by their UTF-8 bytes, no insignificant
/// whitespace, strings escaped as serde_json escapes them. Written straight into one buffer:
/// every read of a timeline and every replay prints each entry's body this way.
pub fn canonical_json(value: &Value) -> String {
    canonical_json_without(value, None)
}

/// [`canonical_json`] leaving out the top-level key `skipped_key` of an object (a stored
/// payload is hashed without its own `hash`), written from `value` itself, not from a copy.
fn canonical_json_without(value: &Value, skipped_key: Option<&str>) -> String {
    let mut output = Vec::with_capacity(256);
    write_canonical_without(value, skipped_key, &mut output);
    // serde_json writes UTF-8 only, so the conversion cannot fail.
    String::from_utf8(output)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn write_canonical(value: &Value, output: &mut Vec<u8>) {
    write_canonical_without(value, None, output);
}

/// [`write_canonical`] leaving out the top-level key `skipped_key` of an object.
fn write_canonical_without(value: &Value, skipped_key: Option<&str>, output: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(key, _)| Some(key.as_str()) != skipped_key)
                .collect();
            // Keys are unique, so an unstable sort is deterministic.
            entries.sort_unstable_by(|left, right| left.0.cmp(right.0));
            output.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    output.push(b',');
                }
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *output, key);
                output.push(b':');
                write_canonical(item, output);
            }
            output.push(b'}');
        }
        Value::Array(items) => {
            output.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    output.push(b',');
                }
                write_canonical(item, output);
            }
            output.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *output, scalar);
        }
    }
}

/// The hash a stored payload should carry, computed from its own `prev_hash` and content.
pub fn stored_payload_hash(stored_payload: &Value) -> String {
    let prev_hash = stored_payload
        .get("prev_hash")
        .and_then(Value::as_str)
        .unwrap_or("");
    link_hash(
        prev_hash,
        &canonical_json_without(stored_payload, Some("hash")),
    )
}

/// SHA-256 over `prev_hash`, a newline and `content` (the canonical payload without its
/// `hash`), in lowercase hex.
pub fn link_hash(prev_hash: &str, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(content.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Why a link does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokenLinkReason {
    /// The entry's sequence is not the previous one plus one (a gap or a reordering).
    SequenceNotContiguous,
    /// The sequence inside the payload differs from the row's sequence.
    SequenceMismatch,
    /// `prev_hash` is not the previous entry's `hash`.
    PrevHashMismatch,
    /// The stored `hash` is not the hash of the stored content: the row was altered.
    HashMismatch,
    /// The payload lacks `hash`, `prev_hash` or `sequence`.
    MalformedPayload,
}

impl BrokenLinkReason {
    /// The reason's stored name (`hash_mismatch`, ...), as auditors and the ledger's refusals
    /// show it; the same spelling serde stores (a test holds the two together).
    pub fn name(&self) -> &'static str {
        match self {
            Self::SequenceNotContiguous => "sequence_not_contiguous",
            Self::SequenceMismatch => "sequence_mismatch",
            Self::PrevHashMismatch => "prev_hash_mismatch",
            Self::HashMismatch => "hash_mismatch",
            Self::MalformedPayload => "malformed_payload",
        }
    }
}

/// The first link that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLink {
    /// The row sequence of the first bad entry.
    pub sequence: u64,
    /// What is wrong with it.
    pub reason: BrokenLinkReason,
}

/// The result of verifying a chain end to end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// How many entries verified before the first broken link (all of them when intact).
    pub verified_entries: u64,
    /// The hash of the last verified entry.
    pub head_hash: String,
    /// The first broken link, if any.
    pub first_broken_link: Option<BrokenLink>,
}

impl ChainReport {
    /// Whether every link held.
    pub fn is_intact(&self) -> bool {
        self.first_broken_link.is_none()
    }
}

/// Incremental verifier: feed stored rows in sequence order, read the report at the end. It
/// keeps only the head, so a history of any length verifies in constant memory.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    report: ChainReport,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            report: ChainReport {
                verified_entries: 0,
                head_hash: GENESIS_HASH.to_owned(),
                first_broken_link: None,
            },
        }
    }
}

impl ChainVerifier {
    /// Checks the next stored row (its `sequence` column and `payload`). After the first broken
    /// link the rest is ignored: everything after it is unverifiable by construction.
    pub fn push(&mut self, row_sequence: u64, stored_payload: &Value) {
        if self.report.first_broken_link.is_some() {
            return;
        }
        if let Some(reason) = self.check(row_sequence, stored_payload) {
            self.report.first_broken_link = Some(BrokenLink {
                sequence: row_sequence,
                reason,
            });
            return;
        }
        self.report.verified_entries += 1;
        self.report.head_hash = stored_payload["hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }

    fn check(&self, row_sequence: u64, stored_payload: &Value) -> Option<BrokenLinkReason> {
        let (Some(payload_sequence), Some(prev_hash), Some(hash)) = (
            stored_payload.get("sequence").and_then(Value::as_u64),
            stored_payload.get("prev_hash").and_then(Value::as_str),
            stored_payload.get("hash").and_then(Value::as_str),
        ) else {
            return Some(BrokenLinkReason::MalformedPayload);
        };
        if row_sequence != self.report.verified_entries + 1 {
            return Some(BrokenLinkReason::SequenceNotContiguous);
        }
        if payload_sequence != row_sequence {
            return Some(BrokenLinkReason::SequenceMismatch);
        }
        if prev_hash != self.report.head_hash {
            return Some(BrokenLinkReason::PrevHashMismatch);
        }
        if stored_payload_hash(stored_payload) != hash {
            return Some(BrokenLinkReason::HashMismatch);
        }
        None
    }

    /// The report so far.
    pub fn report(&self) -> &ChainReport {
        &self.report
    }

    /// Ends verification.
    pub fn finish(self) -> ChainReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The canonical form as first written (a key and a scalar printed through `Value`'s
    /// `Display`): the faster writer must print exactly the same, or stored hashes break.
    fn reference_canonical_json(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let fields: Vec<String> = keys
                    .into_iter()
                    .map(|key| {
                        format!(
                            "{}:{}",
                            Value::String(key.clone()),
                            reference_canonical_json(&map[key])
                        )
                    })
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(reference_canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            scalar => scalar.to_string(),
        }
    }

    #[test]
    fn the_canonical_writer_prints_exactly_the_reference_form() {
        let values = [
            json!({"b": 1, "a": {"d": [true, null, "x"], "c": "å"}}),
            json!({"é": "\u{0}\t\n\"\\/", "Z": -17, "a": [[], {}, [{"y": 0, "x": 1}]], "": "empty key"}),
            json!({"emoji 🦀": "🦀", "bidi": "\u{202E}", "big": 9_007_199_254_740_993_u64, "neg": i64::MIN}),
            json!([1, "two", {"three": 3}, null, false]),
            json!("a lone string with \u{7f} and \u{1f}"),
        ];
        for value in &values {
            assert_eq!(
                canonical_json(value),
                reference_canonical_json(value),
                "{value}"
            );
        }
    }

    #[test]
    fn a_stored_payload_is_hashed_without_its_own_hash_only() {
        let payload = json!({
            "sequence": 3, "prev_hash": "p", "hash": "ignored",
            "body": {"hash": "kept", "z": [1, {"b": 2, "a": 1}]}
        });
        let mut without_hash = payload.clone();
        if let Value::Object(map) = &mut without_hash {
            map.remove("hash");
        }
        assert_eq!(
            stored_payload_hash(&payload),
            link_hash("p", &canonical_json(&without_hash))
        );
        assert_eq!(
            canonical_json(&without_hash),
            r#"{"body":{"hash":"kept","z":[1,{"a":1,"b":2}]},"prev_hash":"p","sequence":3}"#
        );
    }

    #[test]
    fn a_broken_link_reason_is_named_as_it_is_stored() {
        for reason in [
            BrokenLinkReason::SequenceNotContiguous,
            BrokenLinkReason::SequenceMismatch,
            BrokenLinkReason::PrevHashMismatch,
            BrokenLinkReason::HashMismatch,
            BrokenLinkReason::MalformedPayload,
        ] {
            assert_eq!(json!(reason.name()), json!(reason), "{reason:?}");
        }
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"d": [true, null, "x"], "c": "å"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"å","d":[true,null,"x"]},"b":1}"#
        );
    }

    fn link(prev_hash: &str, sequence: u64, note: &str) -> Value {
        let mut payload = json!({"sequence": sequence, "prev_hash": prev_hash, "note": note});
        let hash = stored_payload_hash(&payload);
        payload["hash"] = Value::String(hash);
        payload
    }

    fn three_links() -> Vec<Value> {
        let first = link(GENESIS_HASH, 1, "a");
        let second = link(first["hash"].as_str().unwrap_or_default(), 2, "b");
        let third = link(second["hash"].as_str().unwrap_or_default(), 3, "c");
        vec![first, second, third]
    }

    fn check(rows: &[(u64, Value)], expected_verified: u64, expected_broken: Option<BrokenLink>) {
        let mut verifier = ChainVerifier::default();
        for (sequence, payload) in rows {
            verifier.push(*sequence, payload);
        }
        let report = verifier.finish();
        assert_eq!(report.verified_entries, expected_verified);
        assert_eq!(report.first_broken_link, expected_broken);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows: Vec<(u64, Value)> = three_links()
            .into_iter()
            .zip(1..)
            .map(|(p, s)| (s, p))
            .collect();
        check(&rows, 3, None);
    }

    #[test]
    fn an_edited_row_is_the_first_broken_link() {
        let mut rows: Vec<(u64, Value)> = three_links()
            .into_iter()
            .zip(1..)
            .map(|(p, s)| (s, p))
            .collect();
        rows[1].1["note"] = json!("edited");
        check(
            &rows,
            1,
            Some(BrokenLink {
                sequence: 2,
                reason: BrokenLinkReason::HashMismatch,
            }),
        );
    }

    #[test]
    fn a_removed_row_is_a_gap() {
        let links = three_links();
        let rows = vec![(1, links[0].clone()), (3, links[2].clone())];
        check(
            &rows,
            1,
            Some(BrokenLink {
                sequence: 3,
                reason: BrokenLinkReason::SequenceNotContiguous,
            }),
        );
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let mut links = three_links();
        links[1]["note"] = json!("edited");
        let rehashed = stored_payload_hash(&links[1]);
        links[1]["hash"] = Value::String(rehashed);
        let rows: Vec<(u64, Value)> = links.into_iter().zip(1..).map(|(p, s)| (s, p)).collect();
        check(
            &rows,
            2,
            Some(BrokenLink {
                sequence: 3,
                reason: BrokenLinkReason::PrevHashMismatch,
            }),
        );
    }
}
