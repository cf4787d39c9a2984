//! Hostile JSON: real event bodies and submissions with leaves replaced by what JSON text can
//! say and Rust or PostgreSQL may not hold: `\u0000` escapes (a Rust string holds NUL,
//! PostgreSQL `jsonb` refuses it), lone surrogates, numbers past every integer type and past
//! `f64`, floats where integers belong, dates past chrono's and PostgreSQL's ranges, raw
//! control characters, duplicated and unknown keys, deep nesting. Used for a correction's
//! `corrected_body_json` and for raw submissions on the bus.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};

use crate::values;

/// Marks the leaf a raw fragment replaces (a private-use character no sample contains).
const SENTINEL: &str = "\u{E000}fuzz\u{E000}";

/// Raw JSON fragments put where a value was.
const FRAGMENTS: &[&str] = &[
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"\\ud800\"",
    "\"\\udfff\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u001b[31m\"",
    "\"\\u202e\"",
    "\"\t\"",
    "\"\u{1}\"",
    "1e999",
    "-1e999",
    "1.5",
    "-0",
    "0",
    "-1",
    "255",
    "256",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\" \"",
    "\"1899-12-31\"",
    "\"2200-01-01\"",
    "\"0000-01-01\"",
    "\"-0001-12-31\"",
    "\"+262143-12-31\"",
    "\"-262143-01-01\"",
    "\"-4714-11-23\"",
    "\"+294277-01-01\"",
    "\"2026-02-30\"",
    "\"+262143-12-31T23:59:59Z\"",
    "\"-262143-01-01T00:00:00Z\"",
    "\"-4714-11-23T23:59:59Z\"",
    "\"0001-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59.999999999Z\"",
    "\"2026-03-01T09:00:00+23:59\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"ffffffff-ffff-ffff-ffff-ffffffffffff\"",
    "\"municipality\"",
    "\"fk\"",
    "\"af\"",
    "\"psychiatry\"",
    "\"coach\"",
    "\"system\"",
    "\"auditor\"",
];

/// One sample of every kind of field an event body has: text, names, ids, numbers, dates,
/// optional values, lists, nested periods and a nested correction.
pub fn sample_bodies() -> Vec<Value> {
    let activity = "0193a1b2-0000-7000-8000-000000000001";
    let period = json!({"from": "2026-03-01", "to": "2026-05-31"});
    vec![
        json!({"type": "ParticipantReferred", "source": "vuxenpsykiatri", "referrer": "hudiksvall-ips"}),
        json!({"type": "ReferralDeclined", "reason": "Vill vänta till hösten."}),
        json!({"type": "ParticipantEnrolled", "unit": "hudiksvall-ips", "coach": "coach-17"}),
        json!({"type": "IdentityProtected", "allowed_readers": ["coach-17", "tl-3"]}),
        json!({"type": "IdentityProtected", "allowed_readers": ["coach-17",
               {"agency": "forsakringskassan", "person_id": "fk-officer-4"}]}),
        json!({"type": "ConsentGranted", "consent_id": "0193a1b2-0000-7000-8000-000000000002",
               "discloser": "social_services", "recipient": "ips_unit",
               "data_categories": ["social_assistance_status", "participation"],
               "valid_from": "2026-03-01", "valid_to": "2027-02-28"}),
        json!({"type": "ProfileRecorded", "preferences": "Utomhusarbete,\nförmiddagar.",
               "hours_per_week_wanted": 20, "education_level": "upper_secondary"}),
        json!({"type": "BenefitsCounsellingGiven",
               "benefits_discussed": [{"forsakringskassan": "sjukpenning"}, "akassa"]}),
        json!({"type": "EmployerContactMade", "employer": "Hudiksvalls Snickeri AB",
               "face_to_face": true, "with_participant": false}),
        json!({"type": "ActivityProposed", "activity_id": activity, "kind": "job",
               "employer": "Bageriet", "hours_per_week": 20, "planned_start": "2026-04-01",
               "planned_end": "2026-09-30", "subsidy": "lonebidrag", "at_own_employer": false}),
        json!({"type": "JobStarted", "activity_id": activity, "employer": "Bageriet",
               "occupation": "Bagare", "competitive": true, "subsidy": null,
               "hours_per_week": 30, "started_on": "2026-04-01"}),
        json!({"type": "FollowUpRecorded", "status": "working", "obstacles": "Resor.",
               "helping_factors": "Stöd från chef."}),
        json!({"type": "BenefitRegistered", "benefit": "sjukpenning", "degree_percent": 50,
               "period": period, "employed": true}),
        json!({"type": "ActivityDecision", "activity_id": activity, "outcome": "approved",
               "valid": period, "reason": "Enligt plan."}),
        json!({"type": "ProgrammeAssigned", "programme_id": "0193a1b2-0000-7000-8000-000000000003",
               "programme": "Förberedande insats", "with_activity_allowance": true,
               "period": period}),
        json!({"type": "InpatientAdmitted", "admitted_on": "2026-03-10", "care_form": "voluntary"}),
        json!({"type": "EventCorrected", "supersedes": "0193a1b2-0000-7000-8000-000000000004",
               "reason": "Stavfel.",
               "corrected": {"type": "EmployerContactMade", "employer": "Bageriet",
                             "face_to_face": true, "with_participant": true}}),
    ]
}

/// Every path to a leaf (and to every object key) of `value`.
fn leaves(value: &Value, path: &mut Vec<Step>, found: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(entries) => {
            for (key, item) in entries {
                path.push(Step::Key(key.clone()));
                found.push(path.clone());
                leaves(item, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                leaves(item, path, found);
                path.pop();
            }
        }
        _ => found.push(path.clone()),
    }
}

/// One step into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.get_mut(key.as_str()),
        Step::Index(index) => value.get_mut(*index),
    })
}

/// One change to a JSON value.
#[derive(Clone, Debug)]
enum Mutation {
    /// The leaf becomes a raw fragment (which may not be valid JSON at all).
    Fragment(proptest::sample::Index, String),
    /// The leaf becomes a hostile string (valid JSON).
    Text(proptest::sample::Index, String),
    /// The key is removed.
    Remove(proptest::sample::Index),
    /// A key is added to the top object.
    Add(String, String),
}

fn mutation() -> BoxedStrategy<Mutation> {
    let index = any::<proptest::sample::Index>();
    let fragment = prop_oneof![
        8 => proptest::sample::select(FRAGMENTS).prop_map(str::to_owned),
        1 => (1usize..200).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth))),
    ];
    prop_oneof![
        6 => (index.clone(), fragment.clone()).prop_map(|(at, fragment)| Mutation::Fragment(at, fragment)),
        4 => (index.clone(), values::hostile_text()).prop_map(|(at, text)| Mutation::Text(at, text)),
        1 => index.prop_map(Mutation::Remove),
        1 => (values::hostile_text(), fragment).prop_map(|(key, fragment)| Mutation::Add(key, fragment)),
    ]
    .boxed()
}

/// `base` with `mutations` applied, as JSON text.
fn mutated(mut base: Value, mutations: &[Mutation]) -> String {
    let mut fragments: Vec<String> = Vec::new();
    let mut mark = |fragment: &str| {
        fragments.push(fragment.to_owned());
        Value::String(format!("{SENTINEL}{}", fragments.len() - 1))
    };
    for mutation in mutations {
        let mut found = Vec::new();
        leaves(&base, &mut Vec::new(), &mut found);
        if found.is_empty() {
            continue;
        }
        match mutation {
            Mutation::Fragment(at, fragment) => {
                if let Some(leaf) = at_mut(&mut base, &found[at.index(found.len())]) {
                    *leaf = mark(fragment);
                }
            }
            Mutation::Text(at, text) => {
                if let Some(leaf) = at_mut(&mut base, &found[at.index(found.len())]) {
                    *leaf = Value::String(text.clone());
                }
            }
            Mutation::Remove(at) => {
                let path = &found[at.index(found.len())];
                if let Some((Step::Key(key), parent)) = path.split_last() {
                    if let Some(Value::Object(entries)) = at_mut(&mut base, parent) {
                        entries.remove(key);
                    }
                }
            }
            Mutation::Add(key, fragment) => {
                if let Value::Object(entries) = &mut base {
                    entries.insert(key.clone(), mark(fragment));
                }
            }
        }
    }
    let mut text = base.to_string();
    for (number, fragment) in fragments.iter().enumerate().rev() {
        text = text.replace(&format!("\"{SENTINEL}{number}\""), fragment);
    }
    text
}

/// JSON text around `bases`: one of them with up to four mutations, or its text with bytes
/// cut, or a body nested in corrections past any reader's depth.
pub fn hostile_json(bases: Vec<Value>) -> BoxedStrategy<String> {
    let base = proptest::sample::select(bases);
    prop_oneof![
        2 => base.clone().prop_map(|base| base.to_string()),
        10 => (base.clone(), proptest::collection::vec(mutation(), 1..4))
            .prop_map(|(base, mutations)| mutated(base, &mutations)),
        1 => (base.clone(), any::<proptest::sample::Index>()).prop_map(|(base, cut)| {
            let text = base.to_string();
            let boundaries: Vec<usize> = text.char_indices().map(|(index, _)| index).collect();
            text[..boundaries[cut.index(boundaries.len())]].to_owned()
        }),
        1 => (base, 1usize..300).prop_map(|(base, depth)| {
            let mut nested = base;
            for _ in 0..depth {
                nested = json!({"type": "EventCorrected",
                                "supersedes": "0193a1b2-0000-7000-8000-000000000004",
                                "reason": "r", "corrected": nested});
            }
            nested.to_string()
        }),
    ]
    .boxed()
}

/// A correction's `corrected_body_json`.
pub fn corrected_body() -> BoxedStrategy<String> {
    prop_oneof![
        8 => hostile_json(sample_bodies()),
        1 => values::hostile_text(),
    ]
    .boxed()
}
