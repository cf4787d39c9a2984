//! What a reader is shown of one recorded entry: the one decision behind every read of a
//! participant's entries, live (`GetTimeline`, judged on the ledger clock's today against the
//! participant as folded now) and replayed (an auditor's replay through a party's eyes, judged on
//! the day of T against the participant as folded from what was recorded by T). Both call
//! [`Participant::view_of_entry`], so what a replay says a party saw cannot drift from what the
//! live read showed it.
//!
//! The decision is the consent rule (`Participant::sight`: own party, party to the consent,
//! consent in force on the day, or audit) followed by the view it allows
//! (`visibility::view_for`: free text never crosses a party boundary, location not for a
//! protected identity). Whether the reader may open the participant at all (unit boundary,
//! allow-list) is `Participant::may_open`, asked once per participant before any entry.

use chrono::NaiveDate;
use serde_json::Value;

use crate::aggregate::Participant;
use crate::envelope::{Agency, DataCategory};
use crate::events::{ConsentParty, EventBody};
use crate::visibility::{self, Basis, Reader, Sight};

/// What a reader is shown of one entry; `B` is its body as shown (a `Value`, or
/// [`ShownBody`] when the caller keeps the whole body in its own form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView<B = Value> {
    /// Why the reader may see it (the access log's basis).
    pub basis: Basis,
    /// The body as the reader may see it (whole, or the shared view).
    pub body: B,
    /// The event type the reader is shown instead of the stored one: an inpatient stay is
    /// `AvailabilityChanged` to the IPS unit. `None`: the stored type.
    pub shown_as: Option<&'static str>,
    /// Whether the entry's `hash` and `prev_hash` are shown. A hash commits to everything
    /// stored (the whole body, a refusal's missing gates, the care form behind an availability
    /// line), so anyone who holds it and the rest of the entry can test guesses at what was
    /// kept from them; and each `prev_hash` is the previous entry's hash. Only an auditor,
    /// who is shown every entry whole, is shown them.
    pub hashes_shown: bool,
    /// Whether the author's person id and unit are shown. Not in another party's view of a
    /// protected identity: the recording unit is a location, and the author (the coach) tells
    /// it too, and protected identity carries no location across a party boundary.
    pub author_shown: bool,
}

/// How much of an entry's body a reader is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownBody {
    /// The body as recorded, whole: the caller shows the body it holds (a replay prints it
    /// straight from the typed body, with no `Value` in between).
    Whole,
    /// Only this: the shared view, or the availability an inpatient fact amounts to.
    Only(Value),
}

impl<B> EntryView<B> {
    /// The type to show for an entry stored as `stored_type` (a rejection keeps its own).
    pub fn shown_event_type(&self, stored_type: &str) -> String {
        match self.shown_as {
            Some(shown) if stored_type != crate::events::REJECTED_EVENT_TYPE => shown.to_owned(),
            Some(_) | None => stored_type.to_owned(),
        }
    }
}

impl Participant {
    /// What `reader` is shown, on `on`, of an entry `agency` recorded with `body` (its stored
    /// JSON `stored_body`) in `category`; `None` when it is hidden. `self` is the participant
    /// as folded at the moment of reading: its consents, protected identity and units.
    pub fn view_of_entry(
        &self,
        reader: &Reader,
        agency: Agency,
        category: DataCategory,
        body: &EventBody,
        stored_body: Value,
        on: NaiveDate,
    ) -> Option<EntryView> {
        let mut stored_body = Some(stored_body);
        let view = self.view_of_entry_shown(
            reader,
            agency,
            category,
            body,
            || stored_body.take().unwrap_or(Value::Null),
            on,
        )?;
        let (hashes_shown, author_shown) = (view.hashes_shown, view.author_shown);
        let shown = match view.body {
            ShownBody::Whole => stored_body.unwrap_or(Value::Null),
            ShownBody::Only(shown) => shown,
        };
        Some(EntryView {
            basis: view.basis,
            body: shown,
            shown_as: view.shown_as,
            hashes_shown,
            author_shown,
        })
    }

    /// [`Participant::view_of_entry`], the one decision, for a caller that holds the body in
    /// its own form: a whole body is left to the caller ([`ShownBody::Whole`]), and
    /// `stored_body` (the body's stored JSON) is asked for only when a part of it is shown.
    pub fn view_of_entry_shown(
        &self,
        reader: &Reader,
        agency: Agency,
        category: DataCategory,
        body: &EventBody,
        stored_body: impl FnOnce() -> Value,
        on: NaiveDate,
    ) -> Option<EntryView<ShownBody>> {
        let sight = self.sight(reader, agency, body, category, on);
        let basis = match sight {
            Sight::Full(basis) => {
                let hashes_shown = match basis {
                    Basis::Audit => true,
                    Basis::OwnRecords
                    | Basis::PartyToConsent
                    | Basis::Consent(_)
                    | Basis::NecessaryCare => false,
                };
                return Some(EntryView {
                    basis,
                    body: ShownBody::Whole,
                    shown_as: None,
                    hashes_shown,
                    author_shown: true,
                });
            }
            Sight::Shared(basis) => basis,
            Sight::Hidden => return None,
        };
        let protected = self.identity_protected();
        let reader_party = reader.party();
        // Outside psychiatry and social services a stay is only the availability it amounts
        // to; an auditor (no party) and psychiatry itself see it whole.
        let availability_only = !matches!(reader_party, Some(ConsentParty::SocialServices) | None);
        if availability_only {
            if let Some(outward) = visibility::availability_view(body) {
                let outward_json = serde_json::to_value(&outward).ok()?;
                let body =
                    visibility::view_for_party(sight, outward_json, protected, reader_party)?;
                return Some(EntryView {
                    basis,
                    body: ShownBody::Only(body),
                    shown_as: Some(outward.event_type()),
                    hashes_shown: false,
                    author_shown: !protected,
                });
            }
        }
        let body = visibility::view_for_party(sight, stored_body(), protected, reader_party)?;
        Some(EntryView {
            basis,
            body: ShownBody::Only(body),
            shown_as: None,
            hashes_shown: false,
            author_shown: !protected,
        })
    }

    /// [`Participant::view_of_entry`] for an entry known by its stored tokens and JSON (a read
    /// model's row). Who may see an entry is decided from its agency, category and body, so a
    /// row whose stored values do not read as those is reported ([`UnreadableEntry`]), never
    /// shown or hidden on a guess.
    pub fn view_of_stored_entry(
        &self,
        reader: &Reader,
        agency_token: &str,
        category_token: &str,
        stored_body: Value,
        on: NaiveDate,
    ) -> Result<Option<EntryView>, UnreadableEntry> {
        let agency = Agency::from_token(agency_token)
            .ok_or_else(|| UnreadableEntry(format!("agency `{agency_token}` is no agency")))?;
        let category = DataCategory::from_token(category_token).ok_or_else(|| {
            UnreadableEntry(format!(
                "data category `{category_token}` is no data category"
            ))
        })?;
        // A rejected submission's body is the submitted body; both parse as an event body.
        let body = <EventBody as serde::Deserialize>::deserialize(&stored_body)
            .map_err(|error| UnreadableEntry(format!("its body is no event body ({error})")))?;
        Ok(self.view_of_entry(reader, agency, category, &body, stored_body, on))
    }
}

/// A stored entry whose agency, category or body does not read as one: what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnreadableEntry(pub String);
