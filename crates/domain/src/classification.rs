//! What every field of every event body is, in one place: how it may be shared across a party
//! boundary, whose record it belongs to, and whether it outlives lawful disposal (DOMAIN.md §6
//! and §7; DESIGN.md §3).
//!
//! Privacy used to be a deny-list of field names: a new free-text field crossed every party
//! boundary until someone remembered to list it (`occupation` and `programme` did). Here every
//! field is classified explicitly, per event type, and the shared view is an allow-list built
//! from this table: only what is classified [`Sharing::Shared`] (and, without protected
//! identity, [`Sharing::Location`]) crosses; a field the table does not know is never shown.
//! The same table tells the retention work which fields to encrypt under which key (participant
//! × controller × record series) and which stay readable after the key is destroyed. A test
//! serialises an example of every event type and fails on any key this table does not classify.

use serde_json::{Map, Value};

use crate::envelope::{Agency, RetentionClass};
use crate::events::ConsentParty;

/// How a field may cross a party boundary (from one consent party to another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sharing {
    /// A coarse fact (a kind, a status, a date, hours, a degree, an opaque id linking events):
    /// crosses as-is to a party entitled to see the event.
    Shared,
    /// Typed by a person (reasons, notes, wishes, an occupation, a programme): may carry
    /// clinical detail, amounts or names, so it never crosses.
    FreeText,
    /// Where the participant can be found (employer, IPS unit, referring unit): crosses, except
    /// for a participant with protected identity.
    Location,
    /// Names a person (a coach, the protected identity's allow-list): never crosses.
    Identifying,
    /// A coded value that can tell about health or conduct (a discharge or job-end reason can be
    /// poor health): never crosses, although it is not free text.
    Sensitive,
    /// The compulsory-care flag (care under LPT): crosses to social services only, under the
    /// LPT necessary-care rule, and never to FK, AF or the IPS unit.
    SocialServicesOnly,
}

impl Sharing {
    /// Whether a field of this kind crosses a party boundary as-is, for a participant whose
    /// identity is protected or not. Every kind is decided here, so a new one must be.
    pub fn crosses(self, protected_identity: bool) -> bool {
        self.crosses_to(protected_identity, None)
    }

    /// Whether a field of this kind crosses as-is to `recipient` (`None`: a party with no
    /// right of its own to any field, which is what [`Sharing::crosses`] asks).
    pub fn crosses_to(self, protected_identity: bool, recipient: Option<ConsentParty>) -> bool {
        match self {
            Sharing::Shared => true,
            Sharing::Location => !protected_identity,
            Sharing::FreeText | Sharing::Identifying | Sharing::Sensitive => false,
            Sharing::SocialServicesOnly => recipient == Some(ConsentParty::SocialServices),
        }
    }
}

/// What lawful disposal (gallring, by crypto-shredding) does to a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposal {
    /// Stays readable after the record series' key is destroyed: the event type, dates and the
    /// opaque ids that link events of one history (DOMAIN.md §7: "leaves event types, coarse
    /// dates and a still-verifiable chain").
    Survives,
    /// Personal data: encrypted under the participant × controller × record series key and gone
    /// once that key is destroyed at the lawful date.
    Shredded,
}

/// The class of one field holding a single value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldClass {
    /// Across party boundaries.
    pub sharing: Sharing,
    /// At lawful disposal.
    pub disposal: Disposal,
}

/// What a field holds, for the classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// One value (a token, number, date, text, id or list of them), classified as a whole.
    Value(FieldClass),
    /// A nested struct (a period), classified field by field; `null` when the field is optional
    /// and absent.
    Record(&'static [Field]),
    /// A nested event body (what a correction says), classified by its own `type`.
    Body,
}

/// One classified field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name as stored.
    pub name: &'static str,
    /// What it holds.
    pub kind: FieldKind,
}

/// Whose record an event type is (the controller, personuppgiftsansvarig).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// Only this agency records it.
    Agency(Agency),
    /// Several agencies record it (consents, corrections, FK's and AF's decisions on an
    /// activity): the recording agency, named by the envelope, is the controller.
    RecordingAgency,
}

/// The classification of one event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyClass {
    /// The stored event type (the serde tag).
    pub event_type: &'static str,
    /// Whose record it is.
    pub controller: Controller,
    /// Every field besides the `type` tag.
    pub fields: &'static [Field],
}

impl BodyClass {
    /// The controller of an event of this type that `recording_agency` recorded.
    pub fn controller_for(&self, recording_agency: Agency) -> Agency {
        match self.controller {
            Controller::Agency(agency) => agency,
            Controller::RecordingAgency => recording_agency,
        }
    }

    /// The record series (and so the disposal rule and the shredding key) of an event of this
    /// type that `recording_agency` recorded.
    pub fn record_series(&self, recording_agency: Agency) -> RetentionClass {
        RetentionClass::for_agency(self.controller_for(recording_agency))
    }

    /// The field named `name`, if this type has one (the tag is not a field here).
    pub fn field(&self, name: &str) -> Option<&'static FieldKind> {
        field_named(self.fields, name)
    }
}

/// The key every stored body is tagged with; its value is the event type.
pub const TYPE_TAG: &str = "type";

/// The tag's class: the event type crosses wherever the event is seen, and survives disposal.
pub const TYPE_TAG_CLASS: FieldClass = FieldClass {
    sharing: Sharing::Shared,
    disposal: Disposal::Survives,
};

const fn value(sharing: Sharing, disposal: Disposal) -> FieldKind {
    FieldKind::Value(FieldClass { sharing, disposal })
}

/// A coarse fact about the participant: shared, but personal, so shredded.
const FACT: FieldKind = value(Sharing::Shared, Disposal::Shredded);
/// A date: shared, and one of the coarse dates that outlive disposal.
const DATE: FieldKind = value(Sharing::Shared, Disposal::Survives);
/// A random id linking events of one history (activity, programme, consent, corrected event):
/// means nothing outside the chain, so it is shared and survives.
const LINK: FieldKind = value(Sharing::Shared, Disposal::Survives);
const FREE_TEXT: FieldKind = value(Sharing::FreeText, Disposal::Shredded);
const LOCATION: FieldKind = value(Sharing::Location, Disposal::Shredded);
const PERSON: FieldKind = value(Sharing::Identifying, Disposal::Shredded);
const SENSITIVE: FieldKind = value(Sharing::Sensitive, Disposal::Shredded);
/// The compulsory-care flag: to social services only (LPT necessary-care rule).
const SOCIAL_SERVICES_ONLY: FieldKind = value(Sharing::SocialServicesOnly, Disposal::Shredded);

/// [`crate::values::Period`].
pub const PERIOD_FIELDS: &[Field] = &[field("from", DATE), field("to", DATE)];
const PERIOD: FieldKind = FieldKind::Record(PERIOD_FIELDS);

const fn field(name: &'static str, kind: FieldKind) -> Field {
    Field { name, kind }
}

const fn body(
    event_type: &'static str,
    controller: Controller,
    fields: &'static [Field],
) -> BodyClass {
    BodyClass {
        event_type,
        controller,
        fields,
    }
}

const MUNICIPALITY: Controller = Controller::Agency(Agency::Municipality);
const FORSAKRINGSKASSAN: Controller = Controller::Agency(Agency::Forsakringskassan);
const ARBETSFORMEDLINGEN: Controller = Controller::Agency(Agency::Arbetsformedlingen);
const PSYCHIATRY: Controller = Controller::Agency(Agency::Psychiatry);
const RECORDING_AGENCY: Controller = Controller::RecordingAgency;

/// Every event type with every field, in the order of [`crate::events::EventBody`].
pub static BODY_CLASSES: &[BodyClass] = &[
    // ---- Municipality: intake and lifecycle ----
    body(
        "ParticipantReferred",
        MUNICIPALITY,
        &[field("source", FACT), field("referrer", LOCATION)],
    ),
    body(
        "ReferralDeclined",
        MUNICIPALITY,
        &[field("reason", FREE_TEXT)],
    ),
    body(
        "PlacedOnWaitingList",
        MUNICIPALITY,
        &[field("unit", LOCATION)],
    ),
    body(
        "WaitingListPlaceOffered",
        MUNICIPALITY,
        &[field("unit", LOCATION), field("coach", PERSON)],
    ),
    body(
        "ParticipantEnrolled",
        MUNICIPALITY,
        &[field("unit", LOCATION), field("coach", PERSON)],
    ),
    body("CoachAssigned", MUNICIPALITY, &[field("coach", PERSON)]),
    body(
        "ParticipantPaused",
        MUNICIPALITY,
        &[field("reason", FREE_TEXT)],
    ),
    body("ParticipantResumed", MUNICIPALITY, &[]),
    body(
        "ParticipantDischarged",
        MUNICIPALITY,
        &[field("reason", SENSITIVE)],
    ),
    body(
        "ParticipantReEnrolled",
        MUNICIPALITY,
        &[field("unit", LOCATION), field("coach", PERSON)],
    ),
    body(
        "IdentityProtected",
        MUNICIPALITY,
        &[field("allowed_readers", PERSON)],
    ),
    // ---- Consent ----
    body(
        "ConsentGranted",
        RECORDING_AGENCY,
        &[
            field("consent_id", LINK),
            field("discloser", FACT),
            field("recipient", FACT),
            field("data_categories", FACT),
            field("valid_from", DATE),
            field("valid_to", DATE),
        ],
    ),
    body(
        "ConsentWithdrawn",
        RECORDING_AGENCY,
        &[
            field("discloser", FACT),
            field("recipient", FACT),
            field("data_categories", FACT),
            field("effective_from", DATE),
        ],
    ),
    // ---- Municipality: the IPS path ----
    body(
        "ProfileRecorded",
        MUNICIPALITY,
        &[
            field("preferences", FREE_TEXT),
            field("hours_per_week_wanted", FACT),
            field("education_level", FACT),
        ],
    ),
    body(
        "BenefitsCounsellingGiven",
        MUNICIPALITY,
        &[field("benefits_discussed", FACT)],
    ),
    body(
        "DisclosurePreferenceRecorded",
        MUNICIPALITY,
        &[field("preference", FACT)],
    ),
    body(
        "EmployerContactMade",
        MUNICIPALITY,
        &[
            field("employer", LOCATION),
            field("face_to_face", FACT),
            field("with_participant", FACT),
        ],
    ),
    body(
        "ActivityProposed",
        MUNICIPALITY,
        &[
            field("activity_id", LINK),
            field("kind", FACT),
            field("employer", LOCATION),
            field("hours_per_week", FACT),
            field("planned_start", DATE),
            field("planned_end", DATE),
            field("subsidy", FACT),
            field("at_own_employer", FACT),
        ],
    ),
    body(
        "ActivityStarted",
        MUNICIPALITY,
        &[field("activity_id", LINK), field("started_on", DATE)],
    ),
    body(
        "ActivityEnded",
        MUNICIPALITY,
        &[field("activity_id", LINK), field("ended_on", DATE)],
    ),
    body(
        "JobStarted",
        MUNICIPALITY,
        &[
            field("activity_id", LINK),
            field("employer", LOCATION),
            field("occupation", FREE_TEXT),
            field("competitive", FACT),
            field("subsidy", FACT),
            field("hours_per_week", FACT),
            field("started_on", DATE),
        ],
    ),
    body(
        "HoursChanged",
        MUNICIPALITY,
        &[
            field("activity_id", LINK),
            field("hours_per_week", FACT),
            field("from", DATE),
        ],
    ),
    body(
        "JobEnded",
        MUNICIPALITY,
        &[
            field("activity_id", LINK),
            field("ended_on", DATE),
            field("reason", SENSITIVE),
        ],
    ),
    body(
        "StudiesStarted",
        MUNICIPALITY,
        &[
            field("activity_id", LINK),
            field("programme", FREE_TEXT),
            field("started_on", DATE),
        ],
    ),
    body(
        "StudiesEnded",
        MUNICIPALITY,
        &[field("activity_id", LINK), field("ended_on", DATE)],
    ),
    body(
        "FollowAlongContact",
        MUNICIPALITY,
        &[field("activity_id", LINK), field("contact_on", DATE)],
    ),
    body(
        "FollowUpRecorded",
        MUNICIPALITY,
        &[
            field("status", FACT),
            field("obstacles", FREE_TEXT),
            field("helping_factors", FREE_TEXT),
        ],
    ),
    body("OutreachAttempted", MUNICIPALITY, &[field("channel", FACT)]),
    body("SipHeld", MUNICIPALITY, &[field("held_on", DATE)]),
    body(
        "SipEstablished",
        MUNICIPALITY,
        &[field("established_on", DATE)],
    ),
    body(
        "BenefitSelfReported",
        MUNICIPALITY,
        &[field("benefit", FACT), field("said_on", DATE)],
    ),
    body(
        "SocialAssistanceDecided",
        MUNICIPALITY,
        &[field("status", FACT)],
    ),
    body(
        "ActivityAcceptedInPlanning",
        MUNICIPALITY,
        &[field("activity_id", LINK)],
    ),
    // ---- Försäkringskassan ----
    body(
        "BenefitRegistered",
        FORSAKRINGSKASSAN,
        &[
            field("benefit", FACT),
            field("degree_percent", FACT),
            field("period", PERIOD),
            field("employed", FACT),
        ],
    ),
    body(
        "BenefitEnded",
        FORSAKRINGSKASSAN,
        &[field("benefit", FACT), field("ended_on", DATE)],
    ),
    body(
        "MedicalCertificateReceived",
        FORSAKRINGSKASSAN,
        &[field("period", PERIOD), field("degree_percent", FACT)],
    ),
    body(
        "AvstamningsmoteHeld",
        FORSAKRINGSKASSAN,
        &[field("held_on", DATE)],
    ),
    body(
        "RehabPlanEstablished",
        FORSAKRINGSKASSAN,
        &[field("established_on", DATE)],
    ),
    body(
        "RehabPlanRevised",
        FORSAKRINGSKASSAN,
        &[field("revised_on", DATE)],
    ),
    body(
        "ActivityDecision",
        RECORDING_AGENCY,
        &[
            field("activity_id", LINK),
            field("outcome", FACT),
            field("valid", PERIOD),
            field("reason", FREE_TEXT),
        ],
    ),
    body(
        "ActivityAgreementMade",
        FORSAKRINGSKASSAN,
        &[field("activity_id", LINK), field("valid", PERIOD)],
    ),
    body(
        "DormantBenefitDecided",
        FORSAKRINGSKASSAN,
        &[field("activity_id", LINK), field("valid", PERIOD)],
    ),
    // ---- Arbetsförmedlingen ----
    body(
        "JobSeekerRegistered",
        ARBETSFORMEDLINGEN,
        &[field("registered_on", DATE)],
    ),
    body(
        "JobSeekerDeregistered",
        ARBETSFORMEDLINGEN,
        &[field("deregistered_on", DATE)],
    ),
    body(
        "DisabilityCodingRequested",
        ARBETSFORMEDLINGEN,
        &[field("requested_on", DATE)],
    ),
    body(
        "DisabilityCodingRegistered",
        ARBETSFORMEDLINGEN,
        &[field("registered_on", DATE)],
    ),
    body(
        "ProgrammeAssigned",
        ARBETSFORMEDLINGEN,
        &[
            field("programme_id", LINK),
            field("programme", FREE_TEXT),
            field("with_activity_allowance", FACT),
            field("period", PERIOD),
        ],
    ),
    body(
        "ProgrammeEnded",
        ARBETSFORMEDLINGEN,
        &[field("programme_id", LINK), field("ended_on", DATE)],
    ),
    body(
        "SiusDecided",
        ARBETSFORMEDLINGEN,
        &[field("period", PERIOD)],
    ),
    body("SiusEnded", ARBETSFORMEDLINGEN, &[field("ended_on", DATE)]),
    body(
        "SubsidyDecided",
        ARBETSFORMEDLINGEN,
        &[
            field("subsidy", FACT),
            field("activity_id", LINK),
            field("employer", LOCATION),
            field("period", PERIOD),
        ],
    ),
    // ---- Psychiatry ----
    body("IpsReferralSent", PSYCHIATRY, &[field("sent_on", DATE)]),
    body(
        "TreatmentTeamMeetingHeld",
        PSYCHIATRY,
        &[field("held_on", DATE), field("coach_present", FACT)],
    ),
    body(
        "MedicalCertificateIssued",
        PSYCHIATRY,
        &[field("period", PERIOD), field("degree_percent", FACT)],
    ),
    body(
        "AvailabilityChanged",
        PSYCHIATRY,
        &[field("availability", FACT), field("from", DATE)],
    ),
    body(
        "InpatientAdmitted",
        PSYCHIATRY,
        &[
            field("admitted_on", DATE),
            field("care_form", SOCIAL_SERVICES_ONLY),
        ],
    ),
    body(
        "InpatientDischarged",
        PSYCHIATRY,
        &[field("discharged_on", DATE)],
    ),
    body("DischargeReady", PSYCHIATRY, &[field("ready_on", DATE)]),
    // ---- Corrections ----
    body(
        "EventCorrected",
        RECORDING_AGENCY,
        &[
            field("supersedes", LINK),
            field("reason", FREE_TEXT),
            field("corrected", FieldKind::Body),
        ],
    ),
];

fn field_named(fields: &'static [Field], name: &str) -> Option<&'static FieldKind> {
    fields
        .iter()
        .find(|field| field.name == name)
        .map(|field| &field.kind)
}

/// The classification of `event_type`, or `None` for a type this build does not know.
pub fn body_class(event_type: &str) -> Option<&'static BodyClass> {
    BODY_CLASSES
        .iter()
        .find(|class| class.event_type == event_type)
}

/// The class of the value at `field_path` (dot-separated, e.g. `period.to`) of an event of
/// type `event_type`; `None` when the path is not classified, names a nested struct as a
/// whole, or runs into a nested body (whose fields depend on its own type: see
/// [`classified_leaves`]).
pub fn classify(event_type: &str, field_path: &str) -> Option<FieldClass> {
    if field_path == TYPE_TAG {
        return body_class(event_type).map(|_| TYPE_TAG_CLASS);
    }
    let mut names = field_path.split('.');
    let mut kind = body_class(event_type)?.field(names.next()?)?;
    for name in names {
        kind = match kind {
            FieldKind::Record(fields) => field_named(fields, name)?,
            FieldKind::Value(_) | FieldKind::Body => return None,
        };
    }
    match kind {
        FieldKind::Value(class) => Some(*class),
        FieldKind::Record(_) | FieldKind::Body => None,
    }
}

/// One value of a stored body with its class: `None` when the table does not classify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifiedLeaf {
    /// The dot-separated path (`period.to`, `corrected.employer`).
    pub path: String,
    /// Its class, if classified.
    pub class: Option<FieldClass>,
}

/// Every value of a stored body (a JSON object tagged with `type`), each with its class,
/// walking into nested structs and corrected bodies. What the retention work encrypts by, and
/// what the completeness test checks.
pub fn classified_leaves(body: &Value) -> Vec<ClassifiedLeaf> {
    let mut leaves = Vec::new();
    body_leaves(body, "", &mut leaves);
    leaves
}

fn joined(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn body_leaves(body: &Value, prefix: &str, leaves: &mut Vec<ClassifiedLeaf>) {
    let Value::Object(entries) = body else {
        leaves.push(ClassifiedLeaf {
            path: prefix.to_owned(),
            class: None,
        });
        return;
    };
    let class = entries
        .get(TYPE_TAG)
        .and_then(Value::as_str)
        .and_then(body_class);
    for (name, value) in entries {
        let path = joined(prefix, name);
        if name == TYPE_TAG {
            leaves.push(ClassifiedLeaf {
                path,
                class: class.map(|_| TYPE_TAG_CLASS),
            });
            continue;
        }
        match class.and_then(|class| class.field(name)) {
            Some(kind) => kind_leaves(kind, value, &path, leaves),
            None => leaves.push(ClassifiedLeaf { path, class: None }),
        }
    }
}

fn kind_leaves(kind: &FieldKind, value: &Value, path: &str, leaves: &mut Vec<ClassifiedLeaf>) {
    match (kind, value) {
        (FieldKind::Value(class), _) => leaves.push(ClassifiedLeaf {
            path: path.to_owned(),
            class: Some(*class),
        }),
        (FieldKind::Record(_), Value::Null) => {}
        (FieldKind::Record(fields), Value::Object(entries)) => {
            for (name, item) in entries {
                let item_path = joined(path, name);
                match field_named(fields, name) {
                    Some(item_kind) => kind_leaves(item_kind, item, &item_path, leaves),
                    None => leaves.push(ClassifiedLeaf {
                        path: item_path,
                        class: None,
                    }),
                }
            }
        }
        (
            FieldKind::Record(_),
            Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_),
        ) => leaves.push(ClassifiedLeaf {
            path: path.to_owned(),
            class: None,
        }),
        (FieldKind::Body, nested) => body_leaves(nested, path, leaves),
    }
}

/// The allow-list view of a stored body for a reader of another party: the `type` tag, and
/// each field whose class crosses a party boundary ([`Sharing::crosses`]); nested structs and
/// corrected bodies are filtered the same way. Anything the table does not classify (an
/// unknown field, an unknown event type's fields, a value of an unexpected shape) is left out.
pub fn shared_body(body: &Value, protected_identity: bool) -> Value {
    shared_body_to(body, protected_identity, None)
}

/// [`shared_body`] for a reader of `recipient`: a field only that party may receive (the
/// compulsory-care flag to social services) crosses too.
pub fn shared_body_to(
    body: &Value,
    protected_identity: bool,
    recipient: Option<ConsentParty>,
) -> Value {
    let mut shared = Map::new();
    let Value::Object(entries) = body else {
        return Value::Object(shared);
    };
    let Some(event_type) = entries.get(TYPE_TAG).and_then(Value::as_str) else {
        return Value::Object(shared);
    };
    shared.insert(TYPE_TAG.to_owned(), Value::from(event_type));
    let Some(class) = body_class(event_type) else {
        return Value::Object(shared);
    };
    for (name, value) in entries {
        let kind = class.field(name);
        if let Some(value) =
            kind.and_then(|kind| shared_value(kind, value, protected_identity, recipient))
        {
            shared.insert(name.clone(), value);
        }
    }
    Value::Object(shared)
}

fn shared_value(
    kind: &FieldKind,
    value: &Value,
    protected_identity: bool,
    recipient: Option<ConsentParty>,
) -> Option<Value> {
    match (kind, value) {
        (FieldKind::Value(class), _) => class
            .sharing
            .crosses_to(protected_identity, recipient)
            .then(|| value.clone()),
        (FieldKind::Record(_), Value::Null) => Some(Value::Null),
        (FieldKind::Record(fields), Value::Object(entries)) => Some(Value::Object(
            entries
                .iter()
                .filter_map(|(name, item)| {
                    let item_kind = field_named(fields, name)?;
                    let item = shared_value(item_kind, item, protected_identity, recipient)?;
                    Some((name.clone(), item))
                })
                .collect(),
        )),
        (
            FieldKind::Record(_),
            Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_),
        ) => None,
        (FieldKind::Body, nested) => Some(shared_body_to(nested, protected_identity, recipient)),
    }
}

#[cfg(test)]
#[path = "classification_tests.rs"]
mod tests;
