//! The values the fuzz program puts into fields: mostly well-formed (so cases get past the
//! first check and reach the storage code), the rest near misses and hostile text: empty,
//! huge, whitespace-only, control and NUL characters, bidi and zero-width characters,
//! non-ASCII, extreme numbers and dates outside every range a reader can hold.
//!
//! A field's name picks its shape (an id, a date, a timestamp, a name, free text); the shape
//! is followed about two times in three, so every field also gets every other shape.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

/// Longest of the long hostile strings (one in fifty), in bytes: past every field limit (2,000
/// bytes of free text, 200 of a name, 128 of a request id).
pub const LONG_TEXT_BYTES_MAX: usize = 70_000;

/// Longest hostile string generated (one in a few thousand), in bytes: past the bus's message
/// size limit.
pub const HUGE_TEXT_BYTES_MAX: usize = 1_200_000;

/// What a string field is meant to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A UUID (participant, activity, consent, programme, event, correlation ids).
    Uuid,
    /// A person id or unit: a short token.
    Token,
    /// A `YYYY-MM-DD` date.
    Date,
    /// An RFC 3339 timestamp.
    Timestamp,
    /// A name shown as one line (employer, occupation, programme).
    Name,
    /// Free text (reasons, obstacles, preferences).
    FreeText,
    /// An event body as JSON (a correction's corrected body).
    BodyJson,
    /// Anything.
    Any,
}

impl Shape {
    /// The shape a proto string field of this name holds.
    pub fn of_field(name: &str) -> Shape {
        match name {
            "participant_id"
            | "activity_id"
            | "consent_id"
            | "programme_id"
            | "supersedes_event_id"
            | "correlation_id"
            | "causation_id" => Shape::Uuid,
            "coach_person_id" | "allowed_person_ids" | "unit" | "referrer_unit" | "request_id" => {
                Shape::Token
            }
            "occurred_at" => Shape::Timestamp,
            "employer" | "occupation" | "programme" => Shape::Name,
            "reason" | "preferences" | "obstacles" | "helping_factors" => Shape::FreeText,
            "corrected_body_json" => Shape::BodyJson,
            name if name == "date"
                || name == "from"
                || name == "to"
                || name.ends_with("_on")
                || name.starts_with("valid_")
                || name.starts_with("planned_")
                || name.starts_with("effective_") =>
            {
                Shape::Date
            }
            _ => Shape::Any,
        }
    }
}

/// Characters chosen to break things: controls (NUL first), the C1 range, bidi overrides and
/// isolates, zero-width characters, line separators, a lone BOM, the replacement character,
/// combining marks, characters outside the BMP, JSON and SQL metacharacters.
const HOSTILE_CHARACTERS: &[char] = &[
    '\u{0}',
    '\u{1}',
    '\u{7}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1b}',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9f}',
    '\u{a0}',
    '\u{ad}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{200e}',
    '\u{200f}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '\u{202e}',
    '\u{2060}',
    '\u{2066}',
    '\u{2069}',
    '\u{3000}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10ffff}',
    '\u{1f600}',
    '\u{301}',
    'å',
    'Ä',
    'ö',
    'ß',
    'İ',
    'ı',
    'Ω',
    '中',
    '"',
    '\\',
    '\'',
    ';',
    '%',
    '_',
    '{',
    '}',
    '/',
    '.',
    ':',
    '-',
    '+',
    ' ',
];

/// One hostile character.
pub fn hostile_character() -> BoxedStrategy<char> {
    prop_oneof![
        3 => proptest::sample::select(HOSTILE_CHARACTERS),
        1 => any::<char>(),
    ]
    .boxed()
}

/// A piece of hostile text: plain words, hostile characters, escape-looking text, or one
/// piece repeated into a long run.
fn hostile_piece() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,12}",
        4 => hostile_character().prop_map(String::from),
        1 => proptest::sample::select(&[
            "\\u0000", "\\ud800", "%00", "NULL", "'; DROP TABLE events; --", "${jndi:x}",
            "\u{1b}[31m", "null", "true", "1e999", "-0", "NaN",
        ][..])
        .prop_map(str::to_owned),
        1 => (hostile_character(), 1usize..300).prop_map(|(character, count)| {
            std::iter::repeat_n(character, count).collect()
        }),
    ]
    .boxed()
}

/// Hostile text of any length up to a few hundred bytes, and sometimes far longer.
pub fn hostile_text() -> BoxedStrategy<String> {
    let repeated = |length_max: usize| {
        (hostile_piece(), 1..length_max).prop_map(|(piece, length)| {
            let piece = if piece.is_empty() {
                "x".to_owned()
            } else {
                piece
            };
            piece.repeat(length / piece.len() + 1)
        })
    };
    prop_oneof![
        2000 => proptest::collection::vec(hostile_piece(), 0..8).prop_map(|pieces| pieces.concat()),
        200 => Just(String::new()),
        200 => "[ \t\n\r\u{a0}\u{3000}]{1,8}",
        50 => repeated(LONG_TEXT_BYTES_MAX),
        1 => repeated(HUGE_TEXT_BYTES_MAX),
    ]
    .boxed()
}

/// A string around `well_formed`: usually well formed, sometimes with hostile characters
/// spliced in or whitespace around it, sometimes hostile text.
fn around(well_formed: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let spliced = (
        well_formed.clone(),
        hostile_piece(),
        any::<proptest::sample::Index>(),
    )
        .prop_map(|(text, piece, at)| {
            let boundaries: Vec<usize> = text
                .char_indices()
                .map(|(index, _)| index)
                .chain(std::iter::once(text.len()))
                .collect();
            let cut = boundaries[at.index(boundaries.len())];
            format!("{}{piece}{}", &text[..cut], &text[cut..])
        });
    let padded = (well_formed.clone(), "[ \t\n]{0,3}", "[ \t\n]{0,3}")
        .prop_map(|(text, before, after)| format!("{before}{text}{after}"));
    prop_oneof![
        12 => well_formed,
        3 => spliced,
        2 => padded,
        3 => hostile_text(),
    ]
    .boxed()
}

/// A UUID in every form `Uuid::parse_str` reads, the nil and max UUIDs, and near misses.
fn uuid_text() -> BoxedStrategy<String> {
    let random = any::<u128>().prop_map(uuid::Uuid::from_u128);
    prop_oneof![
        8 => random.clone().prop_map(|id| id.hyphenated().to_string()),
        1 => random.clone().prop_map(|id| id.hyphenated().to_string().to_uppercase()),
        1 => random.clone().prop_map(|id| id.simple().to_string()),
        1 => random.clone().prop_map(|id| id.braced().to_string()),
        1 => random.clone().prop_map(|id| id.urn().to_string()),
        1 => Just(uuid::Uuid::nil().to_string()),
        1 => Just(uuid::Uuid::max().to_string()),
        1 => random.prop_map(|id| id.hyphenated().to_string()[..35].to_owned()),
    ]
    .boxed()
}

/// A short token (person id, unit, request id), at and past the 64-byte limit.
fn token_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => "[a-z][a-z0-9._:-]{0,20}",
        1 => "[a-zA-Z0-9]{64}",
        1 => "[a-zA-Z0-9]{65}",
        1 => "[a-zåäöA-Z0-9 /@]{1,20}",
    ]
    .boxed()
}

/// A date: in range, at and past the 1900–2199 bounds, impossible days, and years chrono
/// reads that PostgreSQL or JSON readers would not (signed, five digits and more).
fn date_text() -> BoxedStrategy<String> {
    let in_range = (1900i32..=2199, 1u32..=12, 1u32..=28)
        .prop_map(|(year, month, day)| format!("{year:04}-{month:02}-{day:02}"));
    let any_numbers = (any::<i32>(), 0u32..=14, 0u32..=33)
        .prop_map(|(year, month, day)| format!("{year}-{month:02}-{day:02}"));
    prop_oneof![
        10 => in_range,
        3 => proptest::sample::select(&[
            "1899-12-31", "1900-01-01", "2199-12-31", "2200-01-01", "0000-01-01", "-0001-01-01",
            "+10000-01-01", "9999-12-31", "+262143-12-31", "-262144-01-01", "2024-02-29",
            "2023-02-29", "2026-13-01", "2026-00-10", "2026-02-30", "2026-1-1",
            "99999999999999999999-01-01", "2026-03-01T00:00:00Z", "2026/03/01", "20260301",
        ][..])
        .prop_map(str::to_owned),
        2 => any_numbers,
    ]
    .boxed()
}

/// A timestamp: recent, at the range bounds, with extreme offsets and fractions, leap
/// seconds, far future and past.
fn timestamp_text() -> BoxedStrategy<String> {
    let recent = (2000i32..=2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60).prop_map(
        |(year, month, day, hour, minute)| {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z")
        },
    );
    prop_oneof![
        8 => recent,
        3 => proptest::sample::select(&[
            "1899-12-31T23:59:59Z", "1900-01-01T00:00:00+14:00", "2199-12-31T22:30:00Z",
            "2199-12-31T23:30:00Z", "2026-03-01T09:00:00.123456789123Z", "2026-06-30T23:59:60Z",
            "2026-03-01t09:00:00z", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59",
            "+262143-12-31T23:59:59Z", "2026-03-01T09:00:00", "2026-03-01 09:00:00Z",
            "1970-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z",
        ][..])
        .prop_map(str::to_owned),
        1 => (any::<i32>(), any::<u8>(), any::<u8>())
            .prop_map(|(year, hours, minutes)| format!("{year}-01-01T00:00:00+{hours:02}:{minutes:02}")),
    ]
    .boxed()
}

/// A plausible name or note.
fn words_text(words_max: usize) -> BoxedStrategy<String> {
    proptest::collection::vec("[A-ZÅÄÖa-zåäö0-9&-]{1,12}", 1..=words_max)
        .prop_map(|words| words.join(" "))
        .boxed()
}

/// A string for a field of `shape`. (`Shape::BodyJson` is built by `json::corrected_body`.)
pub fn text(shape: Shape) -> BoxedStrategy<String> {
    let well_formed = match shape {
        Shape::Uuid => uuid_text(),
        Shape::Token => token_text(),
        Shape::Date => date_text(),
        Shape::Timestamp => timestamp_text(),
        Shape::Name => prop_oneof![
            10 => words_text(4),
            1 => "[a-z]{201}",
            1 => "[a-z]{200}",
        ]
        .boxed(),
        Shape::FreeText => prop_oneof![
            10 => words_text(30),
            1 => "[a-z\n\t]{1999,2001}",
        ]
        .boxed(),
        Shape::BodyJson | Shape::Any => prop_oneof![
            uuid_text(),
            token_text(),
            date_text(),
            timestamp_text(),
            words_text(5),
        ]
        .boxed(),
    };
    // Every shape also gets the others' well-formed values (a date where a UUID belongs).
    let other = prop_oneof![
        uuid_text(),
        token_text(),
        date_text(),
        timestamp_text(),
        words_text(3)
    ];
    prop_oneof![
        9 => around(well_formed),
        1 => other,
    ]
    .boxed()
}

/// A `uint32` field: small values around each limit (hours 1–60, degrees 25–100), the
/// bytes' and words' bounds, and anything.
pub fn uint32() -> BoxedStrategy<u32> {
    prop_oneof![
        6 => 0u32..=110,
        2 => proptest::sample::select(&[0u32, 1, 24, 25, 26, 50, 59, 60, 61, 75, 100, 101, 255, 256, 65_535, 65_536, u32::MAX][..]),
        1 => any::<u32>(),
    ]
    .boxed()
}

/// An enum field with `known` values besides unspecified (0): each known value, unspecified,
/// the next unknown one, negatives, and the extremes.
pub fn enumeration(known: i32) -> BoxedStrategy<i32> {
    prop_oneof![
        10 => 1..=known.max(1),
        1 => Just(0),
        1 => Just(known + 1),
        1 => proptest::sample::select(&[-1, i32::MIN, i32::MAX, 1_000_000][..]),
        1 => any::<i32>(),
    ]
    .boxed()
}
