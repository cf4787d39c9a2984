//! The one mapping between the wire enums of `ips.v1` and the domain's enums, both ways.
//!
//! It lives here, beside the generated types, because Rust allows `From`/`TryFrom` between a
//! generated enum and a domain enum only in the crate of one of them, and the domain must not
//! know the wire (it is pure). Every service (the agencies, the ledger) and ipsctl already
//! depend on this crate, so none needs another to convert.
//!
//! Each pair is one [`wire_enum!`] table whose two generated `match`es are exhaustive on both
//! sides: a variant added to the `.proto` or to the domain does not compile until it is mapped
//! here. `*_UNSPECIFIED` (protobuf's value for an unset field) maps to no domain value: it is
//! [`WireEnumError::Unspecified`], and each caller decides what unset means (required, none,
//! the caller's own agency). A number this build does not know is [`WireEnumError::Unknown`].

#![warn(clippy::all)]

use crate::v1;
use domain::values::{
    ActivityKind, Availability, BenefitKind, CareForm, CounselledBenefit, DecisionOutcome,
    DischargeReason, DisclosurePreference, EducationLevel, FollowUpStatus, JobEndReason,
    OutreachChannel, SocialAssistanceStatus, Subsidy,
};
use domain::{Agency, ConsentParty, DataCategory, ReferralSource};

/// Why a wire enum value names no domain value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireEnumError {
    /// `*_UNSPECIFIED`: the field was not set.
    #[error("is not set")]
    Unspecified,
    /// A number the `.proto` of this build does not define.
    #[error("{0} is not a known value")]
    Unknown(i32),
}

/// A domain enum with a wire twin: decoding from and encoding to the `i32` that generated
/// messages carry, through the `From`/`TryFrom` pair of this module.
pub trait WireEnum: Sized + Copy {
    /// The generated enum.
    type Wire: Copy;

    /// The domain value of a message's field.
    fn from_wire(value: i32) -> Result<Self, WireEnumError>;

    /// The field value of a domain value.
    fn to_wire(self) -> i32;
}

/// Writes `From<domain> for wire`, `TryFrom<wire> for domain` and [`WireEnum`] from one table.
macro_rules! wire_enum {
    ($wire:ident <=> $domain:ident { $($wire_variant:ident <=> $domain_variant:pat_param => $domain_value:expr),+ $(,)? }) => {
        impl From<$domain> for v1::$wire {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain_variant => v1::$wire::$wire_variant),+
                }
            }
        }

        impl TryFrom<v1::$wire> for $domain {
            type Error = WireEnumError;

            fn try_from(value: v1::$wire) -> Result<Self, WireEnumError> {
                match value {
                    v1::$wire::Unspecified => Err(WireEnumError::Unspecified),
                    $(v1::$wire::$wire_variant => Ok($domain_value)),+
                }
            }
        }

        impl WireEnum for $domain {
            type Wire = v1::$wire;

            fn from_wire(value: i32) -> Result<Self, WireEnumError> {
                v1::$wire::try_from(value)
                    .map_err(|_| WireEnumError::Unknown(value))
                    .and_then(Self::try_from)
            }

            fn to_wire(self) -> i32 {
                v1::$wire::from(self) as i32
            }
        }
    };
    // The common case: the same variant name on both sides.
    ($wire:ident <=> $domain:ident { $($variant:ident),+ $(,)? }) => {
        wire_enum!($wire <=> $domain { $($variant <=> $domain::$variant => $domain::$variant),+ });
    };
}

wire_enum!(Agency <=> Agency {
    Municipality,
    Forsakringskassan,
    Arbetsformedlingen,
    Psychiatry,
});

wire_enum!(ConsentParty <=> ConsentParty {
    IpsUnit,
    SocialServices,
    Forsakringskassan,
    Arbetsformedlingen,
    Psychiatry,
});

wire_enum!(DataCategory <=> DataCategory {
    Participation,
    Consent,
    VocationalProfile,
    ActivitiesAndWork,
    BenefitDecisions,
    LabourMarket,
    HealthCoarse,
    SocialAssistanceStatus,
    FollowUpNotes,
});

wire_enum!(ActivityKind <=> ActivityKind {
    Arbetsprovning,
    Arbetstraning,
    Praktik,
    Studies,
    SocialTraining,
    OtherOccupation,
    Job,
});

wire_enum!(Subsidy <=> Subsidy {
    Lonebidrag,
    Nystartsjobb,
    Introduktionsjobb,
});

wire_enum!(BenefitKind <=> BenefitKind {
    Sjukpenning,
    Rehabiliteringspenning,
    Aktivitetsersattning,
    Sjukersattning,
});

wire_enum!(DecisionOutcome <=> DecisionOutcome {
    Approved,
    ApprovedWithConditions,
    Rejected,
    MoreInformationNeeded,
});

wire_enum!(ReferralSource <=> ReferralSource {
    Vuxenpsykiatri,
    Socialpsykiatri,
    Ifo,
    Forsakringskassan,
    Arbetsformedlingen,
    OwnInitiative,
});

wire_enum!(DischargeReason <=> DischargeReason {
    EmployedAndStable,
    Studies,
    Moved,
    PoorHealth,
    LostContact,
    Declined,
    Other,
});

wire_enum!(EducationLevel <=> EducationLevel {
    PrimaryIncomplete,
    Primary,
    UpperSecondary,
    PostSecondary,
});

// The wire flattens Försäkringskassan's benefits into the list; the domain nests them.
wire_enum!(CounselledBenefit <=> CounselledBenefit {
    Sjukpenning
        <=> CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning)
        => CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning),
    Rehabiliteringspenning
        <=> CounselledBenefit::Forsakringskassan(BenefitKind::Rehabiliteringspenning)
        => CounselledBenefit::Forsakringskassan(BenefitKind::Rehabiliteringspenning),
    Aktivitetsersattning
        <=> CounselledBenefit::Forsakringskassan(BenefitKind::Aktivitetsersattning)
        => CounselledBenefit::Forsakringskassan(BenefitKind::Aktivitetsersattning),
    Sjukersattning
        <=> CounselledBenefit::Forsakringskassan(BenefitKind::Sjukersattning)
        => CounselledBenefit::Forsakringskassan(BenefitKind::Sjukersattning),
    Forsorjningsstod <=> CounselledBenefit::Forsorjningsstod => CounselledBenefit::Forsorjningsstod,
    Aktivitetsstod <=> CounselledBenefit::Aktivitetsstod => CounselledBenefit::Aktivitetsstod,
    Akassa <=> CounselledBenefit::Akassa => CounselledBenefit::Akassa,
    Studiestod <=> CounselledBenefit::Studiestod => CounselledBenefit::Studiestod,
});

wire_enum!(DisclosurePreference <=> DisclosurePreference {
    None,
    NeedsOnly,
    Diagnosis,
});

wire_enum!(JobEndReason <=> JobEndReason {
    Resigned,
    Dismissed,
    FixedTermEnded,
    Health,
    Other,
});

wire_enum!(FollowUpStatus <=> FollowUpStatus {
    Searching,
    InActivity,
    Working,
    Studying,
    Paused,
});

wire_enum!(OutreachChannel <=> OutreachChannel {
    Phone,
    TextMessage,
    Letter,
    HomeVisit,
    ThroughTreatmentTeam,
});

wire_enum!(SocialAssistanceStatus <=> SocialAssistanceStatus {
    Granted,
    Denied,
    Ended,
});

wire_enum!(Availability <=> Availability {
    Available,
    TemporarilyUnavailable,
});

wire_enum!(CareForm <=> CareForm {
    Voluntary,
    Compulsory,
});

/// The wire agency of a stored agency token (read models keep tokens); unspecified for a
/// token this build does not know.
pub fn agency_token_to_wire(token: &str) -> i32 {
    Agency::from_token(token).map_or(v1::Agency::Unspecified as i32, Agency::to_wire)
}

/// The wire category of a stored category token; unspecified for a token this build does not
/// know.
pub fn data_category_token_to_wire(token: &str) -> i32 {
    DataCategory::from_token(token)
        .map_or(v1::DataCategory::Unspecified as i32, DataCategory::to_wire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    /// Every number the wire enum defines (they are dense from 0), then one past the end.
    fn wire_numbers<D: WireEnum>() -> std::ops::Range<i32>
    where
        D::Wire: TryFrom<i32>,
    {
        let defined = (0..)
            .take_while(|number| D::Wire::try_from(*number).is_ok())
            .count();
        0..i32::try_from(defined).unwrap_or(i32::MAX)
    }

    /// Both directions agree: every domain value goes to the wire and back unchanged, every
    /// defined wire number but 0 comes back from the domain unchanged, 0 is unspecified, and
    /// the first undefined number is unknown.
    fn round_trips<D>(domain_values: impl IntoIterator<Item = D>)
    where
        D: WireEnum + PartialEq + std::fmt::Debug,
        D::Wire: TryFrom<i32>,
    {
        let domain_values: Vec<D> = domain_values.into_iter().collect();
        for value in &domain_values {
            assert_eq!(D::from_wire(value.to_wire()), Ok(*value));
        }
        let numbers = wire_numbers::<D>();
        assert_eq!(
            numbers.len(),
            domain_values.len() + 1,
            "one wire value per domain value, plus unspecified"
        );
        assert_eq!(D::from_wire(0), Err(WireEnumError::Unspecified));
        for number in numbers.clone().skip(1) {
            let value = D::from_wire(number);
            assert_eq!(value.map(D::to_wire), Ok(number));
        }
        assert_eq!(
            D::from_wire(numbers.end),
            Err(WireEnumError::Unknown(numbers.end))
        );
        assert_eq!(D::from_wire(-1), Err(WireEnumError::Unknown(-1)));
    }

    #[test]
    fn every_pair_maps_both_ways_and_back() {
        round_trips(Agency::iter());
        round_trips(ConsentParty::iter());
        round_trips(DataCategory::iter());
        round_trips(ActivityKind::iter());
        round_trips(Subsidy::iter());
        round_trips(BenefitKind::iter());
        round_trips(DecisionOutcome::iter());
        round_trips(ReferralSource::iter());
        round_trips(DischargeReason::iter());
        round_trips(EducationLevel::iter());
        round_trips(
            BenefitKind::iter()
                .map(CounselledBenefit::Forsakringskassan)
                .chain([
                    CounselledBenefit::Forsorjningsstod,
                    CounselledBenefit::Aktivitetsstod,
                    CounselledBenefit::Akassa,
                    CounselledBenefit::Studiestod,
                ]),
        );
        round_trips(DisclosurePreference::iter());
        round_trips(JobEndReason::iter());
        round_trips(FollowUpStatus::iter());
        round_trips(OutreachChannel::iter());
        round_trips(SocialAssistanceStatus::iter());
        round_trips(Availability::iter());
        round_trips(CareForm::iter());
    }

    /// Same-named pairs map by name, not by position: a reordered `.proto` or domain enum
    /// must not swap two values.
    #[test]
    fn same_named_values_map_by_name() {
        fn names_match<D: WireEnum + std::fmt::Debug>(values: impl IntoIterator<Item = D>)
        where
            D::Wire: TryFrom<i32> + std::fmt::Debug,
        {
            for value in values {
                let wire = D::Wire::try_from(value.to_wire()).ok();
                assert_eq!(format!("{wire:?}"), format!("Some({value:?})"));
            }
        }
        names_match(Agency::iter());
        names_match(ConsentParty::iter());
        names_match(DataCategory::iter());
        names_match(ActivityKind::iter());
        names_match(Subsidy::iter());
        names_match(BenefitKind::iter());
        names_match(DecisionOutcome::iter());
        names_match(ReferralSource::iter());
        names_match(DischargeReason::iter());
        names_match(EducationLevel::iter());
        names_match(DisclosurePreference::iter());
        names_match(JobEndReason::iter());
        names_match(FollowUpStatus::iter());
        names_match(OutreachChannel::iter());
        names_match(SocialAssistanceStatus::iter());
        names_match(Availability::iter());
        names_match(CareForm::iter());
    }

    #[test]
    fn stored_tokens_map_to_the_wire() {
        assert_eq!(
            agency_token_to_wire("fk"),
            v1::Agency::Forsakringskassan as i32
        );
        assert_eq!(
            agency_token_to_wire("forsakringskassan"),
            v1::Agency::Unspecified as i32
        );
        for category in DataCategory::iter() {
            assert_eq!(
                data_category_token_to_wire(category.token()),
                category.to_wire()
            );
        }
        assert_eq!(
            data_category_token_to_wire("unknown"),
            v1::DataCategory::Unspecified as i32
        );
    }
}
