//! The event body of each Försäkringskassan write, built from its request alone. Pure (no NATS,
//! no tonic status, no clock), so each RPC's field rules are tested here directly; the handlers
//! in `service.rs` only hand these to [`rpc::AgencyEdge`].

use domain::{EventBody, InputError};
use proto::v1;
use rpc::fields::{self, required_date};

/// Shared with Arbetsförmedlingen: both decide on activities.
pub use rpc::fields::activity_decision as decide_activity;
/// Shared by every agency.
pub use rpc::fields::event_correction as correct_event;

/// `RegisterBenefit`.
pub fn register_benefit(request: &v1::RegisterBenefitRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::BenefitRegistered {
        benefit: fields::benefit_kind("benefit", request.benefit)?,
        degree_percent: fields::degree_percent("degree_percent", request.degree_percent)?,
        period: fields::required_period("period", request.period.as_ref())?,
        employed: request.employed,
    })
}

/// `EndBenefit`.
pub fn end_benefit(request: &v1::EndBenefitRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::BenefitEnded {
        benefit: fields::benefit_kind("benefit", request.benefit)?,
        ended_on: required_date("ended_on", &request.ended_on)?,
    })
}

/// `ReceiveMedicalCertificate`.
pub fn receive_medical_certificate(
    request: &v1::MedicalCertificateRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::MedicalCertificateReceived {
        period: fields::required_period("period", request.period.as_ref())?,
        degree_percent: fields::degree_percent("degree_percent", request.degree_percent)?,
    })
}

/// `RecordAvstamningsmote`.
pub fn record_avstamningsmote(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::AvstamningsmoteHeld {
        held_on: required_date("date", &request.date)?,
    })
}

/// `EstablishRehabPlan`.
pub fn establish_rehab_plan(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::RehabPlanEstablished {
        established_on: required_date("date", &request.date)?,
    })
}

/// `ReviseRehabPlan`.
pub fn revise_rehab_plan(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::RehabPlanRevised {
        revised_on: required_date("date", &request.date)?,
    })
}

/// `MakeActivityAgreement`.
pub fn make_activity_agreement(
    request: &v1::ActivityPeriodRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::ActivityAgreementMade {
        activity_id: fields::required_activity_id(&request.activity_id)?,
        valid: fields::required_period("valid", request.valid.as_ref())?,
    })
}

/// `DecideDormantBenefit`.
pub fn decide_dormant_benefit(
    request: &v1::ActivityPeriodRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::DormantBenefitDecided {
        activity_id: fields::required_activity_id(&request.activity_id)?,
        valid: fields::required_period("valid", request.valid.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::{BenefitKind, DecisionOutcome, Period};
    use domain::ActivityId;

    const ACTIVITY: &str = "0193a1b2-0000-4000-8000-000000000011";

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
    fn a_benefit_registration_is_parsed_and_each_bad_field_named() {
        let request = v1::RegisterBenefitRequest {
            benefit: v1::BenefitKind::Rehabiliteringspenning as i32,
            degree_percent: 50,
            period: period("2026-03-01", "2026-05-31"),
            employed: true,
            ..Default::default()
        };
        assert_eq!(
            register_benefit(&request),
            Ok(EventBody::BenefitRegistered {
                benefit: BenefitKind::Rehabiliteringspenning,
                degree_percent: 50,
                period: Period {
                    from: date("2026-03-01"),
                    to: date("2026-05-31"),
                },
                employed: true,
            })
        );
        for (bad, field) in [
            (
                v1::RegisterBenefitRequest {
                    benefit: 0,
                    ..request.clone()
                },
                "benefit",
            ),
            (
                v1::RegisterBenefitRequest {
                    degree_percent: 40,
                    ..request.clone()
                },
                "degree_percent",
            ),
            (
                v1::RegisterBenefitRequest {
                    period: None,
                    ..request.clone()
                },
                "period",
            ),
            (
                v1::RegisterBenefitRequest {
                    period: period("2026-05-31", "2026-03-01"),
                    ..request.clone()
                },
                "period.to",
            ),
        ] {
            assert_eq!(failed_field(register_benefit(&bad)), field);
        }
    }

    #[test]
    fn dated_steps_need_their_date() {
        let request = v1::DateRequest {
            write: None,
            date: "2026-04-02".into(),
        };
        assert_eq!(
            record_avstamningsmote(&request),
            Ok(EventBody::AvstamningsmoteHeld {
                held_on: date("2026-04-02")
            })
        );
        assert_eq!(
            establish_rehab_plan(&request),
            Ok(EventBody::RehabPlanEstablished {
                established_on: date("2026-04-02")
            })
        );
        assert_eq!(
            revise_rehab_plan(&request),
            Ok(EventBody::RehabPlanRevised {
                revised_on: date("2026-04-02")
            })
        );
        let undated = v1::DateRequest::default();
        for build in [
            record_avstamningsmote,
            establish_rehab_plan,
            revise_rehab_plan,
        ] {
            assert_eq!(failed_field(build(&undated)), "date");
        }
        let ended = v1::EndBenefitRequest {
            benefit: v1::BenefitKind::Sjukpenning as i32,
            ended_on: "2026-13-01".into(),
            ..Default::default()
        };
        assert_eq!(failed_field(end_benefit(&ended)), "ended_on");
    }

    #[test]
    fn certificates_and_agreements_name_their_bad_field() {
        let certificate = v1::MedicalCertificateRequest {
            period: period("2026-03-01", "2026-03-31"),
            degree_percent: 100,
            ..Default::default()
        };
        assert_eq!(
            receive_medical_certificate(&certificate),
            Ok(EventBody::MedicalCertificateReceived {
                period: Period {
                    from: date("2026-03-01"),
                    to: date("2026-03-31"),
                },
                degree_percent: 100,
            })
        );
        assert_eq!(
            failed_field(receive_medical_certificate(
                &v1::MedicalCertificateRequest {
                    degree_percent: 0,
                    ..certificate
                }
            )),
            "degree_percent"
        );
        let agreement = v1::ActivityPeriodRequest {
            activity_id: ACTIVITY.into(),
            valid: period("2026-03-01", "2026-08-31"),
            ..Default::default()
        };
        let activity_id = ActivityId::parse(ACTIVITY).expect("a test id");
        let valid = Period {
            from: date("2026-03-01"),
            to: date("2026-08-31"),
        };
        assert_eq!(
            make_activity_agreement(&agreement),
            Ok(EventBody::ActivityAgreementMade { activity_id, valid })
        );
        assert_eq!(
            decide_dormant_benefit(&agreement),
            Ok(EventBody::DormantBenefitDecided { activity_id, valid })
        );
        let without_activity = v1::ActivityPeriodRequest {
            activity_id: String::new(),
            ..agreement
        };
        assert_eq!(
            failed_field(make_activity_agreement(&without_activity)),
            "activity_id"
        );
        assert_eq!(
            failed_field(decide_dormant_benefit(&without_activity)),
            "activity_id"
        );
    }

    #[test]
    fn an_activity_decision_needs_an_outcome() {
        let request = v1::ActivityDecisionRequest {
            activity_id: ACTIVITY.into(),
            outcome: v1::DecisionOutcome::Approved as i32,
            reason: " plan agreed ".into(),
            ..Default::default()
        };
        assert_eq!(
            decide_activity(&request),
            Ok(EventBody::ActivityDecision {
                activity_id: ActivityId::parse(ACTIVITY).expect("a test id"),
                outcome: DecisionOutcome::Approved,
                valid: None,
                reason: "plan agreed".into(),
            })
        );
        assert_eq!(
            failed_field(decide_activity(&v1::ActivityDecisionRequest {
                outcome: 0,
                ..request
            })),
            "outcome"
        );
    }
}
