//! Small value types the event bodies are made of: kinds of activity, benefit, subsidy and
//! decision, periods, and bounded free text.
//!
//! All are part of the stored schema (snake_case tokens): add variants, never rename them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::errors::InputError;

/// Most hours per week any activity, job or study may have (40 h is full time).
pub const HOURS_PER_WEEK_MAX: u8 = 60;
/// Longest free-text field, in bytes (reasons, obstacles, preferences).
pub const FREE_TEXT_LENGTH_MAX_BYTES: usize = 2_000;

/// What kind of activity a coach proposes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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

impl ActivityKind {
    /// The stable token, the same as the serde name (used in rule reasons and read models).
    pub fn token(self) -> &'static str {
        self.into()
    }
}

/// A wage subsidy decided by Arbetsförmedlingen.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
)]
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
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Available for activities.
    Available,
    /// Temporarily unavailable.
    TemporarilyUnavailable,
}

/// The legal form of an inpatient stay. Psychiatry's own record: the compulsory flag crosses
/// only to social services (the LPT necessary-care rule), never to FK, AF or the IPS unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum CareForm {
    /// Voluntary psychiatric inpatient care (HSL).
    Voluntary,
    /// Compulsory psychiatric care (LPT).
    Compulsory,
}

/// Why a participant left IPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
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

/// Longest name (employer, occupation, programme), in bytes: a name is a line, not a text.
pub const NAME_LENGTH_MAX_BYTES: usize = 200;

/// The earliest date any date field may hold. A wider range only lets typos through (and
/// `+10000-01-01`, which chrono parses, would not survive a round trip through every reader).
pub const DATE_EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};
/// The latest date any date field may hold.
pub const DATE_LATEST: NaiveDate = match NaiveDate::from_ymd_opt(2199, 12, 31) {
    Some(date) => date,
    None => NaiveDate::MAX,
};

/// Checks that `date` lies in [`DATE_EARLIEST`]..=[`DATE_LATEST`].
pub fn validate_date_range(field: &str, date: NaiveDate) -> Result<(), InputError> {
    if !(DATE_EARLIEST..=DATE_LATEST).contains(&date) {
        return Err(InputError::new(
            field,
            format!("must lie between {DATE_EARLIEST} and {DATE_LATEST}"),
        ));
    }
    Ok(())
}

/// Which characters a text field may hold (issue 9). Every text field of every event body is
/// one of these (see `EventBody::validate`), and everything else stored is held to
/// [`TextClass::FreeText`] by `Submission::validate`, so whatever passes can be stored in
/// PostgreSQL `text`/`jsonb` (which refuse U+0000 and so would stall the ledger's lane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextClass {
    /// Notes typed by a person: lines and tabs are content. Refused: every other C0 control
    /// (U+0000–U+001F: NUL cannot be stored; the rest, including CR, are terminal escapes or
    /// invisible), DEL (U+007F) and the C1 controls (U+0080–U+009F, which some terminals act on).
    FreeText,
    /// What names a thing (an employer, an occupation, a programme) and is shown to other
    /// agencies as one line. Refused besides every control (even tab and newline): the bidi
    /// embeddings and overrides U+202A–U+202E and isolates U+2066–U+2069 (they make a name
    /// display as something else, e.g. "Acme\u{202E}proC"), the zero-width characters
    /// U+200B–U+200D, U+2060 and U+FEFF (two names that look the same would differ, defeating
    /// search and comparison), and the line and paragraph separators U+2028/U+2029 (a name is
    /// one line). The marks U+200E/U+200F stay allowed: they override nothing and a
    /// mixed-direction name may need them.
    Name,
}

impl TextClass {
    /// Whether `character` may appear in text of this class.
    pub fn admits(self, character: char) -> bool {
        match self {
            TextClass::FreeText => {
                character == '\t' || character == '\n' || !character.is_control()
            }
            TextClass::Name => {
                !character.is_control()
                    && !matches!(
                        character,
                        '\u{202A}'..='\u{202E}'
                            | '\u{2066}'..='\u{2069}'
                            | '\u{200B}'..='\u{200D}'
                            | '\u{2060}'
                            | '\u{FEFF}'
                            | '\u{2028}'
                            | '\u{2029}'
                    )
            }
        }
    }

    /// Checks every character of `text`; the reason names the first refused one and where.
    pub fn validate(self, field: &str, text: &str) -> Result<(), InputError> {
        match text
            .char_indices()
            .find(|(_, character)| !self.admits(*character))
        {
            None => Ok(()),
            Some((byte_offset, character)) => Err(InputError::new(
                field,
                format!(
                    "must not contain U+{:04X} (at byte {byte_offset}): {}",
                    u32::from(character),
                    match self {
                        TextClass::FreeText =>
                            "free text may hold no control characters but tab and newline",
                        TextClass::Name =>
                            "a name may hold no control, bidirectional or zero-width characters",
                    }
                ),
            )),
        }
    }
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
    TextClass::FreeText.validate(field, text)
}

/// Checks a required name (employer, occupation, programme).
pub fn validate_name(field: &str, text: &str) -> Result<(), InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(field, "is required"));
    }
    validate_optional_name(field, text)
}

/// Checks an optional name.
pub fn validate_optional_name(field: &str, text: &str) -> Result<(), InputError> {
    if text.len() > NAME_LENGTH_MAX_BYTES {
        return Err(InputError::new(
            field,
            format!("is longer than {NAME_LENGTH_MAX_BYTES} bytes"),
        ));
    }
    TextClass::Name.validate(field, text)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the refused character, or `None` when `text` is admitted.
    fn check(class: TextClass, text: &str, expected: Option<char>) {
        let refused = text.chars().find(|character| !class.admits(*character));
        assert_eq!(refused, expected, "{class:?} {text:?}");
        assert_eq!(
            class.validate("field", text).is_ok(),
            expected.is_none(),
            "{class:?} {text:?}"
        );
    }

    #[test]
    fn free_text_keeps_tab_and_newline_and_refuses_other_controls() {
        check(TextClass::FreeText, "Vill arbeta med djur.", None);
        check(TextClass::FreeText, "rad ett\n\trad två", None);
        check(TextClass::FreeText, "Åsa \u{202E} och \u{200B}", None);
        check(TextClass::FreeText, "Acme\u{0}Corp", Some('\u{0}'));
        check(TextClass::FreeText, "rad\r\n", Some('\r'));
        check(TextClass::FreeText, "bell\u{7}", Some('\u{7}'));
        check(TextClass::FreeText, "escape\u{1B}[31m", Some('\u{1B}'));
        check(TextClass::FreeText, "del\u{7F}", Some('\u{7F}'));
        check(TextClass::FreeText, "c1\u{85}", Some('\u{85}'));
        check(TextClass::FreeText, "c1\u{9F}", Some('\u{9F}'));
    }

    #[test]
    fn names_refuse_every_control_bidi_override_and_zero_width_character() {
        check(TextClass::Name, "Hudiksvalls Snickeri AB", None);
        check(TextClass::Name, "Café Ängel \u{200E}(ext)", None);
        check(TextClass::Name, "Acme\tCorp", Some('\t'));
        check(TextClass::Name, "Acme\nCorp", Some('\n'));
        check(TextClass::Name, "Acme\u{0}Corp", Some('\u{0}'));
        check(TextClass::Name, "Acme\u{85}", Some('\u{85}'));
        for refused in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}',
            '\u{2028}', '\u{2029}',
        ] {
            check(
                TextClass::Name,
                &format!("Acme{refused}Corp"),
                Some(refused),
            );
            check(TextClass::FreeText, &format!("Acme{refused}Corp"), None);
        }
    }

    #[test]
    fn a_refusal_names_the_field_and_the_character() {
        let error = validate_name("employer", "Acme\u{0}Corp").err();
        assert_eq!(
            error.as_ref().map(|error| error.field.as_str()),
            Some("employer")
        );
        assert!(error.is_some_and(|error| error.reason.contains("U+0000")));
        assert!(validate_name("employer", &"x".repeat(NAME_LENGTH_MAX_BYTES + 1)).is_err());
        assert!(validate_name("employer", &"x".repeat(NAME_LENGTH_MAX_BYTES)).is_ok());
    }

    #[test]
    fn dates_lie_between_1900_and_2199() {
        let date = |year, month, day| NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default();
        assert!(validate_date_range("date", date(1900, 1, 1)).is_ok());
        assert!(validate_date_range("date", date(2199, 12, 31)).is_ok());
        assert!(validate_date_range("date", date(1899, 12, 31)).is_err());
        assert!(validate_date_range("date", date(2200, 1, 1)).is_err());
        assert!(validate_date_range("date", date(10_000, 1, 1)).is_err());
    }
}
