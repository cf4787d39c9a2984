//! The event body of each psychiatry write, built from its request alone. Pure (no NATS, no
//! tonic status, no clock), so each RPC's field rules are tested here directly; the handlers in
//! `service.rs` only hand these to [`rpc::AgencyEdge`]. The wire has no field for a diagnosis
//! or a cause, so no body here can carry one.

use domain::values::{Availability, CareForm};
use domain::{EventBody, InputError};
use proto::v1;
use proto::wire::WireEnum;
use rpc::fields::{self, required_date};

/// Shared by every agency.
pub use rpc::fields::event_correction as correct_event;

/// `SendIpsReferral`.
pub fn send_ips_referral(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::IpsReferralSent {
        sent_on: required_date("date", &request.date)?,
    })
}

/// `RecordTreatmentTeamMeeting`.
pub fn record_treatment_team_meeting(
    request: &v1::TreatmentTeamMeetingRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::TreatmentTeamMeetingHeld {
        held_on: required_date("held_on", &request.held_on)?,
        coach_present: request.coach_present,
    })
}

/// `IssueMedicalCertificate`.
pub fn issue_medical_certificate(
    request: &v1::IssueMedicalCertificateRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::MedicalCertificateIssued {
        period: fields::required_period("period", request.period.as_ref())?,
        degree_percent: fields::degree_percent("degree_percent", request.degree_percent)?,
    })
}

/// `ChangeAvailability`.
pub fn change_availability(
    request: &v1::ChangeAvailabilityRequest,
) -> Result<EventBody, InputError> {
    let availability = Availability::from_wire(request.availability).map_err(|_| {
        InputError::new(
            "availability",
            "must be available or temporarily unavailable",
        )
    })?;
    Ok(EventBody::AvailabilityChanged {
        availability,
        from: required_date("from", &request.from)?,
    })
}

/// `ReportDischargeReady`.
pub fn report_discharge_ready(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::DischargeReady {
        ready_on: required_date("date", &request.date)?,
    })
}

/// `RecordInpatientAdmission`.
pub fn record_inpatient_admission(
    request: &v1::InpatientAdmissionRequest,
) -> Result<EventBody, InputError> {
    let care_form = CareForm::from_wire(request.care_form)
        .map_err(|_| InputError::new("care_form", "must be voluntary or compulsory"))?;
    Ok(EventBody::InpatientAdmitted {
        admitted_on: required_date("admitted_on", &request.admitted_on)?,
        care_form,
    })
}

/// `RecordInpatientDischarge`.
pub fn record_inpatient_discharge(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::InpatientDischarged {
        discharged_on: required_date("date", &request.date)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::Period;

    fn date(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
    }

    fn failed(body: Result<EventBody, InputError>) -> InputError {
        body.expect_err("the request is invalid")
    }

    #[test]
    fn dated_steps_need_their_date() {
        let request = v1::DateRequest {
            write: None,
            date: "2026-02-10".into(),
        };
        assert_eq!(
            send_ips_referral(&request),
            Ok(EventBody::IpsReferralSent {
                sent_on: date("2026-02-10")
            })
        );
        assert_eq!(
            report_discharge_ready(&request),
            Ok(EventBody::DischargeReady {
                ready_on: date("2026-02-10")
            })
        );
        for build in [send_ips_referral, report_discharge_ready] {
            assert_eq!(failed(build(&v1::DateRequest::default())).field, "date");
        }
        let meeting = v1::TreatmentTeamMeetingRequest {
            held_on: "2026-02-12".into(),
            coach_present: true,
            ..Default::default()
        };
        assert_eq!(
            record_treatment_team_meeting(&meeting),
            Ok(EventBody::TreatmentTeamMeetingHeld {
                held_on: date("2026-02-12"),
                coach_present: true,
            })
        );
        assert_eq!(
            failed(record_treatment_team_meeting(
                &v1::TreatmentTeamMeetingRequest {
                    held_on: "12/2/2026".into(),
                    ..meeting
                }
            ))
            .field,
            "held_on"
        );
    }

    #[test]
    fn a_certificate_carries_period_and_degree_only() {
        let request = v1::IssueMedicalCertificateRequest {
            period: Some(v1::Period {
                from: "2026-02-01".into(),
                to: "2026-02-28".into(),
            }),
            degree_percent: 75,
            ..Default::default()
        };
        assert_eq!(
            issue_medical_certificate(&request),
            Ok(EventBody::MedicalCertificateIssued {
                period: Period {
                    from: date("2026-02-01"),
                    to: date("2026-02-28"),
                },
                degree_percent: 75,
            })
        );
        assert_eq!(
            failed(issue_medical_certificate(
                &v1::IssueMedicalCertificateRequest {
                    degree_percent: 60,
                    ..request.clone()
                }
            ))
            .field,
            "degree_percent"
        );
        assert_eq!(
            failed(issue_medical_certificate(
                &v1::IssueMedicalCertificateRequest {
                    period: None,
                    ..request
                }
            ))
            .field,
            "period"
        );
    }

    #[test]
    fn availability_must_be_named() {
        let request = v1::ChangeAvailabilityRequest {
            availability: v1::Availability::TemporarilyUnavailable as i32,
            from: "2026-03-01".into(),
            ..Default::default()
        };
        assert_eq!(
            change_availability(&request),
            Ok(EventBody::AvailabilityChanged {
                availability: Availability::TemporarilyUnavailable,
                from: date("2026-03-01"),
            })
        );
        for unnamed in [v1::Availability::Unspecified as i32, 99] {
            let error = failed(change_availability(&v1::ChangeAvailabilityRequest {
                availability: unnamed,
                ..request.clone()
            }));
            assert_eq!(
                (error.field.as_str(), error.reason.as_str()),
                (
                    "availability",
                    "must be available or temporarily unavailable"
                )
            );
        }
    }

    #[test]
    fn an_admission_needs_its_day_and_a_care_form() {
        let admission = |care_form: i32, admitted_on: &str| v1::InpatientAdmissionRequest {
            write: None,
            admitted_on: admitted_on.into(),
            care_form,
        };
        assert_eq!(
            record_inpatient_admission(&admission(v1::CareForm::Compulsory as i32, "2026-04-01")),
            Ok(EventBody::InpatientAdmitted {
                admitted_on: date("2026-04-01"),
                care_form: CareForm::Compulsory,
            })
        );
        assert_eq!(
            failed(record_inpatient_admission(&admission(
                v1::CareForm::Unspecified as i32,
                "2026-04-01"
            )))
            .field,
            "care_form"
        );
        assert_eq!(
            failed(record_inpatient_admission(&admission(99, "2026-04-01"))).field,
            "care_form"
        );
        assert_eq!(
            failed(record_inpatient_admission(&admission(
                v1::CareForm::Voluntary as i32,
                ""
            )))
            .field,
            "admitted_on"
        );
        assert_eq!(
            failed(record_inpatient_discharge(&v1::DateRequest {
                write: None,
                date: String::new(),
            }))
            .field,
            "date"
        );
    }
}
