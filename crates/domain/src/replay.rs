//! An auditor's replay of one participant's history on both time axes (DOMAIN.md §7): the
//! history **as recorded at T** (system time: only entries whose `recorded_at` is at or before
//! T), optionally cut at business time **occurred at or before T'**, and the participant as the
//! aggregate folds it at that point. Pure, like the rest of the domain: the ledger loads the
//! entries, this decides which belong to the replay and what the participant was.
//!
//! Two folds, because the axes answer different questions. What a reader was allowed to see at
//! T depends on everything recorded by T (a consent granted by then counts, whatever day it
//! names), so reads through a party's eyes are judged against [`ReplayedHistory::as_recorded`].
//! What the participant's situation was on business day T' is the fold of the entries that had
//! occurred by then, as far as they were known at T: [`ReplayedHistory::as_of_cut`]. Without T'
//! the two are the same.
//!
//! `recorded_at` increases strictly along each chain (`Participant::next_recorded_at`), so the
//! entries recorded by T are a prefix of the chain; the cut does not rely on it.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;

use crate::aggregate::Participant;
use crate::events::{EventBody, ParticipantEvent};
use crate::ids::EventId;

/// Where a replay cuts the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayCut {
    /// System time T: only entries recorded at or before it.
    pub recorded_at: DateTime<Utc>,
    /// Business time T': only entries that occurred at or before it, when given.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl ReplayCut {
    /// Whether the entry was recorded at or before T.
    pub fn recorded_by(&self, entry: &ParticipantEvent) -> bool {
        entry.recorded_at <= self.recorded_at
    }

    /// Whether the entry belongs to the replay: recorded by T and, when T' is given, occurred
    /// by T'.
    pub fn contains(&self, entry: &ParticipantEvent) -> bool {
        self.recorded_by(entry)
            && self
                .occurred_at
                .is_none_or(|occurred_at| entry.envelope.occurred_at <= occurred_at)
    }

    /// The day a reader at T judged consents on: T's business date (as the live reads use the
    /// ledger clock's business date).
    pub fn reading_date(&self) -> NaiveDate {
        crate::clock::business_date(self.recorded_at)
    }

    /// The business day the replayed state is judged on (gate statuses, consents in force):
    /// T' when given, else T.
    pub fn business_date(&self) -> NaiveDate {
        crate::clock::business_date(self.occurred_at.unwrap_or(self.recorded_at))
    }
}

/// A participant's history cut for a replay, and the participant folded from it.
#[derive(Clone, Debug)]
pub struct ReplayedHistory {
    /// The entries of the replay ([`ReplayCut::contains`]), in sequence order.
    pub entries: Vec<ParticipantEvent>,
    /// How many entries were recorded by T (before the business-time cut).
    pub recorded_entries: usize,
    /// Everything recorded by T, folded: what a read at T decided visibility on.
    pub as_recorded: Participant,
    /// The replay's entries folded, when a business-time cut left some out.
    cut_fold: Option<Participant>,
}

impl ReplayedHistory {
    /// The replay's entries folded: the participant on the business day of the cut (the same
    /// as [`ReplayedHistory::as_recorded`] without a business-time cut).
    pub fn as_of_cut(&self) -> &Participant {
        self.cut_fold.as_ref().unwrap_or(&self.as_recorded)
    }
}

/// Cuts `history` (a participant's entries in sequence order, possibly already limited to those
/// recorded by T) and folds it with the aggregate's own `apply`.
pub fn replay(history: Vec<ParticipantEvent>, cut: &ReplayCut) -> ReplayedHistory {
    let mut fold = ReplayFold::new(*cut, history.len());
    for entry in history {
        fold.push(entry);
    }
    fold.finish()
}

/// [`replay`] one entry at a time, so a replay folds while the rows are still arriving from
/// the store rather than after they all have.
#[derive(Clone, Debug)]
pub struct ReplayFold {
    cut: ReplayCut,
    entries: Vec<ParticipantEvent>,
    recorded_entries: usize,
    as_recorded: Participant,
}

impl ReplayFold {
    /// An empty fold for `cut`, with room for `entries_expected` entries.
    pub fn new(cut: ReplayCut, entries_expected: usize) -> Self {
        ReplayFold {
            cut,
            entries: Vec::with_capacity(entries_expected),
            recorded_entries: 0,
            as_recorded: Participant::default(),
        }
    }

    /// Takes the next entry of the history (in sequence order).
    pub fn push(&mut self, entry: ParticipantEvent) {
        if !self.cut.recorded_by(&entry) {
            return;
        }
        self.recorded_entries += 1;
        if self.cut.contains(&entry) {
            self.as_recorded.apply_kept(&entry);
            self.entries.push(entry);
        } else {
            self.as_recorded.apply(entry);
        }
    }

    /// The chain head as recorded by T, as far as the history has been taken: what the access
    /// log keeps of the read, known before the entries are decided on.
    pub fn head_sequence(&self) -> u64 {
        self.as_recorded.chain_head().0
    }

    /// The replay: the entries of the cut and the participant folded at it.
    pub fn finish(self) -> ReplayedHistory {
        let cut_fold = self.cut.occurred_at.map(|_| {
            let mut folded = Participant::default();
            for entry in &self.entries {
                folded.apply_kept(entry);
            }
            folded
        });
        ReplayedHistory {
            entries: self.entries,
            recorded_entries: self.recorded_entries,
            as_recorded: self.as_recorded,
            cut_fold,
        }
    }
}

/// For each entry corrected within `entries`, the index of its latest accepted correction
/// there. A rejected correction supersedes nothing; a correction of an entry outside `entries`
/// (cut off by business time) has nothing to supersede in the replay.
pub fn latest_corrections(entries: &[ParticipantEvent]) -> HashMap<EventId, usize> {
    let present: std::collections::HashSet<EventId> = entries
        .iter()
        .map(|entry| entry.envelope.event_id)
        .collect();
    let mut latest = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if let EventBody::EventCorrected { supersedes, .. } = &entry.body {
            if entry.is_accepted() && present.contains(supersedes) {
                latest.insert(*supersedes, index);
            }
        }
    }
    latest
}
