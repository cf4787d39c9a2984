//! Small value types the event bodies are made of: kinds of activity, benefit, subsidy and
//! decision, periods, and bounded free text.
//!
//! All are part of the stored schema (snake_case tokens): add variants, never rename them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::errors::InputError;

/// Most hours per week any activity, job or study may have (40 h is full time).
pub const HOURS_PER_WEEK_MAX: u8 = 60;
/// Longest free-text field, in bytes (reasons, obstacles, preferences, employer names).
pub const FREE_TEXT_LENGTH_MAX_BYTES: usize = 2_000;

/// What kind of activity a coach proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Work trial (arbetsprövning).
    Arbetsprovning,
    /// Unpaid work training (arbetsträning).
    Arbetstraning,
    /// Work placement (praktik).
    Praktik,
    /// Studies (Komvux etc.).
    Studies,
    /// Social training / other meaningful occupation.
    SocialTraining,
    /// Other occupation.
    OtherOccupation,
    /// A paid job (competitive or subsidised).
    Job,
}

/// A wage subsidy decided by Arbetsförmedlingen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subsidy {
    /// Lönebidrag.
    Lonebidrag,
    /// Nystartsjobb.
    Nystartsjobb,
    /// Introduktionsjobb.
    Introduktionsjobb,
}

/// A Försäkringskassan benefit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenefitKind {
    /// Sickness benefit.
    Sjukpenning,
    /// Rehabilitation compensation.
    Rehabiliteringspenning,
    /// Activity compensation (ages 19–29).
    Aktivitetsersattning,
    /// Sickness compensation.
    Sjukersattning,
}

/// Benefits a coach can discuss in benefits counselling (also: income sources in SUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounselledBenefit {
    /// A Försäkringskassan benefit.
    Forsakringskassan(BenefitKind),
    /// Försörjningsstöd.
    Forsorjningsstod,
    /// Aktivitetsstöd.
    Aktivitetsstod,
    /// Unemployment insurance.
    Akassa,
    /// Student aid.
    Studiestod,
}

/// What the participant wants an employer told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisclosurePreference {
    /// Nothing.
    None,
    /// Only the support needs.
    NeedsOnly,
    /// The diagnosis too.
    Diagnosis,
}

/// Education level (SUS categories).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EducationLevel {
    /// Not completed compulsory school.
    PrimaryIncomplete,
    /// Compulsory school.
    Primary,
    /// Upper secondary school.
    UpperSecondary,
    /// Post-secondary education.
    PostSecondary,
}

/// An agency's answer on an activity (the green light, or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// Approved.
    Approved,
    /// Approved with conditions.
    ApprovedWithConditions,
    /// Rejected.
    Rejected,
    /// More information needed.
    MoreInformationNeeded,
}

impl DecisionOutcome {
    /// Approvals carry a validity period; the others do not need one.
    pub fn is_approval(self) -> bool {
        matches!(
            self,
            DecisionOutcome::Approved | DecisionOutcome::ApprovedWithConditions
        )
    }
}

/// Social assistance status, coarse on purpose: never amounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocialAssistanceStatus {
    /// Granted.
    Granted,
    /// Denied.
    Denied,
    /// Ended.
    Ended,
}

/// The only availability fact that leaves psychiatry: never the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Available for activities.
    Available,
    /// Temporarily unavailable.
    TemporarilyUnavailable,
}

/// Why a participant left IPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DischargeReason {
    /// Employed and stable.
    EmployedAndStable,
    /// Started studies.
    Studies,
    /// Moved away.
    Moved,
    /// Poor health.
    PoorHealth,
    /// Lost contact.
    LostContact,
    /// Declined further support.
    Declined,
    /// Other.
    Other,
}

/// Why a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEndReason {
    /// The participant resigned.
    Resigned,
    /// Dismissed.
    Dismissed,
    /// Fixed term ended.
    FixedTermEnded,
    /// Health.
    Health,
    /// Other.
    Other,
}

/// How an outreach attempt was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutreachChannel {
    /// Phone.
    Phone,
    /// Text message.
    TextMessage,
    /// Letter.
    Letter,
    /// Home visit.
    HomeVisit,
    /// Through the treatment team.
    ThroughTreatmentTeam,
}

/// The status part of a two-monthly follow-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// Searching for work or studies.
    Searching,
    /// In an activity.
    InActivity,
    /// Working.
    Working,
    /// Studying.
    Studying,
    /// Paused.
    Paused,
}

/// A closed date period, both days included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

impl Period {
    /// Checks that the period does not end before it starts; `field` names the end field.
    pub fn validate(&self, field: &str) -> Result<(), InputError> {
        if self.to < self.from {
            return Err(InputError::new(
                field,
                "must not be before the start of the period",
            ));
        }
        Ok(())
    }

    /// Whether `day` falls inside the period.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// Checks hours per week (1 to 60).
pub fn validate_hours(field: &str, hours_per_week: u8) -> Result<(), InputError> {
    if hours_per_week == 0 || hours_per_week > HOURS_PER_WEEK_MAX {
        return Err(InputError::new(
            field,
            "must be between 1 and 60 hours per week",
        ));
    }
    Ok(())
}

/// Checks a required free-text field.
pub fn validate_text(field: &str, text: &str) -> Result<(), InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(field, "is required"));
    }
    validate_optional_text(field, text)
}

/// Checks an optional free-text field.
pub fn validate_optional_text(field: &str, text: &str) -> Result<(), InputError> {
    if text.len() > FREE_TEXT_LENGTH_MAX_BYTES {
        return Err(InputError::new(field, "is longer than 2000 bytes"));
    }
    Ok(())
}

/// Checks a degree of benefit or certificate (25, 50, 75 or 100 percent).
pub fn validate_degree(field: &str, degree_percent: u8) -> Result<(), InputError> {
    if ![25, 50, 75, 100].contains(&degree_percent) {
        return Err(InputError::new(field, "must be 25, 50, 75 or 100 percent"));
    }
    Ok(())
}

/// Longest arbetsprövning at the participant's own employer under the 2026 rule, in days.
pub const OWN_EMPLOYER_TRIAL_DAYS_MAX: i64 = 14;
/// Most such trials per calendar year.
pub const OWN_EMPLOYER_TRIALS_PER_YEAR_MAX: usize = 2;

/// The first day the 2026 rule (arbetsprövning at the own employer on sjukpenning, with a notice
/// to FK instead of an approval) is in force.
pub fn own_employer_trial_rule_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or(NaiveDate::MAX)
}
