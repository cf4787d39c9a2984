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
use crate::events::EventBody;
use crate::visibility::{self, Basis, Reader, Sight};

/// What a reader is shown of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView {
    /// Why the reader may see it (the access log's basis).
    pub basis: Basis,
    /// The body as the reader may see it (whole, or the shared view).
    pub body: Value,
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
        let sight = self.sight(reader, agency, body, category, on);
        let basis = match sight {
            Sight::Full(basis) | Sight::Shared(basis) => basis,
            Sight::Hidden => return None,
        };
        let protected = self.protected_identity().is_some();
        let body = visibility::view_for(sight, stored_body, protected)?;
        Some(EntryView { basis, body })
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
