//! The event body of each Arbetsförmedlingen write, built from its request alone. Pure (no
//! NATS, no tonic status, no clock), so each RPC's field rules are tested here directly; the
//! handlers in `service.rs` only hand these to [`rpc::AgencyEdge`]. A programme id the service
//! mints (`rpc::submit::MintedKind::Programme`) is passed in.

use domain::{EventBody, InputError, ProgrammeId};
use proto::v1;
use rpc::fields::{self, required_date};

/// Shared with Försäkringskassan: both decide on activities.
pub use rpc::fields::activity_decision as decide_activity;
/// Shared by every agency.
pub use rpc::fields::event_correction as correct_event;

/// `RegisterJobSeeker`.
pub fn register_job_seeker(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::JobSeekerRegistered {
        registered_on: required_date("date", &request.date)?,
    })
}

/// `DeregisterJobSeeker`.
pub fn deregister_job_seeker(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::JobSeekerDeregistered {
        deregistered_on: required_date("date", &request.date)?,
    })
}

/// `RequestDisabilityCoding`.
pub fn request_disability_coding(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::DisabilityCodingRequested {
        requested_on: required_date("date", &request.date)?,
    })
}

/// `RegisterDisabilityCoding`.
pub fn register_disability_coding(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::DisabilityCodingRegistered {
        registered_on: required_date("date", &request.date)?,
    })
}

/// The programme id an `AssignProgramme` names, or `None` when the service must mint one.
pub fn requested_programme_id(
    request: &v1::AssignProgrammeRequest,
) -> Result<Option<ProgrammeId>, InputError> {
    if request.programme_id.trim().is_empty() {
        return Ok(None);
    }
    ProgrammeId::parse(&request.programme_id).map(Some)
}

/// `AssignProgramme`, under `programme_id` (the request's, or the one minted for it).
pub fn assign_programme(
    request: &v1::AssignProgrammeRequest,
    programme_id: ProgrammeId,
) -> Result<EventBody, InputError> {
    let programme = request.programme.trim();
    domain::values::validate_name("programme", programme)?;
    Ok(EventBody::ProgrammeAssigned {
        programme_id,
        programme: programme.to_owned(),
        with_activity_allowance: request.with_activity_allowance,
        period: fields::required_period("period", request.period.as_ref())?,
    })
}

/// `EndProgramme`.
pub fn end_programme(request: &v1::EndProgrammeRequest) -> Result<EventBody, InputError> {
    if request.programme_id.trim().is_empty() {
        return Err(InputError::new("programme_id", "is required"));
    }
    Ok(EventBody::ProgrammeEnded {
        programme_id: ProgrammeId::parse(&request.programme_id)?,
        ended_on: required_date("ended_on", &request.ended_on)?,
    })
}

/// `DecideSius`.
pub fn decide_sius(request: &v1::PeriodRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::SiusDecided {
        period: fields::required_period("period", request.period.as_ref())?,
    })
}

/// `EndSius`.
pub fn end_sius(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::SiusEnded {
        ended_on: required_date("date", &request.date)?,
    })
}

/// `DecideSubsidy`.
pub fn decide_subsidy(request: &v1::DecideSubsidyRequest) -> Result<EventBody, InputError> {
    let employer = request.employer.trim();
    domain::values::validate_name("employer", employer)?;
    Ok(EventBody::SubsidyDecided {
        subsidy: fields::required_subsidy("subsidy", request.subsidy)?,
        activity_id: fields::optional_activity_id(&request.activity_id)?,
        employer: employer.to_owned(),
        period: fields::required_period("period", request.period.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::{Period, Subsidy};

    const PROGRAMME: &str = "0193a1b2-0000-4000-8000-000000000021";

    fn date(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
    }

    fn period(from: &str, to: &str) -> Option<v1::Period> {
        Some(v1::Period {
            from: from.into(),
            to: to.into(),
        })
    }

    fn failed_field(body: Result<EventBody, InputError>) -> String {
        body.expect_err("the request is invalid").field
    }

    #[test]
    fn dated_steps_need_their_date() {
        let request = v1::DateRequest {
            write: None,
            date: "2026-01-15".into(),
        };
        let on = date("2026-01-15");
        assert_eq!(
            register_job_seeker(&request),
            Ok(EventBody::JobSeekerRegistered { registered_on: on })
        );
        assert_eq!(
            deregister_job_seeker(&request),
            Ok(EventBody::JobSeekerDeregistered {
                deregistered_on: on
            })
        );
        assert_eq!(
            request_disability_coding(&request),
            Ok(EventBody::DisabilityCodingRequested { requested_on: on })
        );
        assert_eq!(
            register_disability_coding(&request),
            Ok(EventBody::DisabilityCodingRegistered { registered_on: on })
        );
        assert_eq!(
            end_sius(&request),
            Ok(EventBody::SiusEnded { ended_on: on })
        );
        for build in [
            register_job_seeker,
            deregister_job_seeker,
            request_disability_coding,
            register_disability_coding,
            end_sius,
        ] {
            assert_eq!(failed_field(build(&v1::DateRequest::default())), "date");
        }
    }

    #[test]
    fn a_programme_is_assigned_under_the_given_or_minted_id() {
        let minted = ProgrammeId::parse(PROGRAMME).expect("a test id");
        let request = v1::AssignProgrammeRequest {
            programme: " Introduktion till arbete ".into(),
            with_activity_allowance: true,
            period: period("2026-02-01", "2026-07-31"),
            ..Default::default()
        };
        assert_eq!(requested_programme_id(&request), Ok(None));
        assert_eq!(
            requested_programme_id(&v1::AssignProgrammeRequest {
                programme_id: PROGRAMME.into(),
                ..request.clone()
            }),
            Ok(Some(minted))
        );
        assert_eq!(
            requested_programme_id(&v1::AssignProgrammeRequest {
                programme_id: "programme-1".into(),
                ..request.clone()
            })
            .map_err(|error| error.field),
            Err("programme_id".to_owned())
        );
        assert_eq!(
            assign_programme(&request, minted),
            Ok(EventBody::ProgrammeAssigned {
                programme_id: minted,
                programme: "Introduktion till arbete".into(),
                with_activity_allowance: true,
                period: Period {
                    from: date("2026-02-01"),
                    to: date("2026-07-31"),
                },
            })
        );
        assert_eq!(
            failed_field(assign_programme(
                &v1::AssignProgrammeRequest {
                    programme: "  ".into(),
                    ..request.clone()
                },
                minted
            )),
            "programme"
        );
        assert_eq!(
            failed_field(assign_programme(
                &v1::AssignProgrammeRequest {
                    period: None,
                    ..request
                },
                minted
            )),
            "period"
        );
    }

    #[test]
    fn a_programme_end_names_its_programme() {
        let request = v1::EndProgrammeRequest {
            programme_id: PROGRAMME.into(),
            ended_on: "2026-06-30".into(),
            ..Default::default()
        };
        assert_eq!(
            end_programme(&request),
            Ok(EventBody::ProgrammeEnded {
                programme_id: ProgrammeId::parse(PROGRAMME).expect("a test id"),
                ended_on: date("2026-06-30"),
            })
        );
        let unnamed = v1::EndProgrammeRequest {
            programme_id: " ".into(),
            ..request.clone()
        };
        let error = end_programme(&unnamed).expect_err("no programme");
        assert_eq!(
            (error.field.as_str(), error.reason.as_str()),
            ("programme_id", "is required")
        );
        assert_eq!(
            failed_field(end_programme(&v1::EndProgrammeRequest {
                ended_on: String::new(),
                ..request
            })),
            "ended_on"
        );
    }

    #[test]
    fn sius_and_subsidies_name_their_bad_field() {
        assert_eq!(
            decide_sius(&v1::PeriodRequest {
                period: period("2026-03-01", "2026-09-30"),
                ..Default::default()
            }),
            Ok(EventBody::SiusDecided {
                period: Period {
                    from: date("2026-03-01"),
                    to: date("2026-09-30"),
                },
            })
        );
        assert_eq!(
            failed_field(decide_sius(&v1::PeriodRequest::default())),
            "period"
        );
        let subsidy = v1::DecideSubsidyRequest {
            subsidy: v1::Subsidy::Lonebidrag as i32,
            employer: "Hälsinge Trä".into(),
            period: period("2026-03-01", "2027-02-28"),
            ..Default::default()
        };
        assert_eq!(
            decide_subsidy(&subsidy),
            Ok(EventBody::SubsidyDecided {
                subsidy: Subsidy::Lonebidrag,
                activity_id: None,
                employer: "Hälsinge Trä".into(),
                period: Period {
                    from: date("2026-03-01"),
                    to: date("2027-02-28"),
                },
            })
        );
        for (bad, field) in [
            (
                v1::DecideSubsidyRequest {
                    subsidy: v1::Subsidy::Unspecified as i32,
                    ..subsidy.clone()
                },
                "subsidy",
            ),
            (
                v1::DecideSubsidyRequest {
                    employer: String::new(),
                    ..subsidy.clone()
                },
                "employer",
            ),
            (
                v1::DecideSubsidyRequest {
                    activity_id: "not-a-uuid".into(),
                    ..subsidy
                },
                "activity_id",
            ),
        ] {
            assert_eq!(failed_field(decide_subsidy(&bad)), field);
        }
    }
}
