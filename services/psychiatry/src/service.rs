//! `ips.v1.PsychiatryService`: each handler parses its fields into one domain event body and
//! hands it to the shared [`rpc::AgencyEdge`]. The wire has no field for a diagnosis or a cause,
//! so none can leave psychiatry through it.

use domain::values::{Availability, CareForm};
use domain::{EventBody, InputError};
use proto::v1::{self, psychiatry_service_server::PsychiatryService};
use proto::wire::WireEnum;
use rpc::fields::{self, required_date};
use rpc::AgencyEdge;
use tonic::{Request, Response, Status};

/// The service implementation.
pub struct PsychiatryApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl PsychiatryService for PsychiatryApi {
    async fn send_ips_referral(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::IpsReferralSent {
                    sent_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn record_treatment_team_meeting(
        &self,
        request: Request<v1::TreatmentTeamMeetingRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::TreatmentTeamMeetingHeld {
                    held_on: required_date("held_on", &request.held_on)?,
                    coach_present: request.coach_present,
                })
            })
            .await
    }

    async fn issue_medical_certificate(
        &self,
        request: Request<v1::IssueMedicalCertificateRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::MedicalCertificateIssued {
                    period: fields::required_period("period", request.period.as_ref())?,
                    degree_percent: fields::degree_percent(
                        "degree_percent",
                        request.degree_percent,
                    )?,
                })
            })
            .await
    }

    async fn change_availability(&self, request: Request<v1::ChangeAvailabilityRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let availability = match v1::Availability::try_from(request.availability) {
                    Ok(v1::Availability::Available) => Availability::Available,
                    Ok(v1::Availability::TemporarilyUnavailable) => {
                        Availability::TemporarilyUnavailable
                    }
                    _ => {
                        return Err(InputError::new(
                            "availability",
                            "must be available or temporarily unavailable",
                        ))
                    }
                };
                Ok(EventBody::AvailabilityChanged {
                    availability,
                    from: required_date("from", &request.from)?,
                })
            })
            .await
    }

    async fn report_discharge_ready(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::DischargeReady {
                    ready_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn record_inpatient_admission(
        &self,
        request: Request<v1::InpatientAdmissionRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let care_form = CareForm::from_wire(request.care_form)
                    .map_err(|_| InputError::new("care_form", "must be voluntary or compulsory"))?;
                Ok(EventBody::InpatientAdmitted {
                    admitted_on: required_date("admitted_on", &request.admitted_on)?,
                    care_form,
                })
            })
            .await
    }

    async fn record_inpatient_discharge(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::InpatientDischarged {
                    discharged_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge.correct(&extensions, &request).await
    }
}
