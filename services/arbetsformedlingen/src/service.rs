//! `ips.v1.ArbetsformedlingenService`: each handler parses its fields into one domain event body
//! and hands it to the shared [`rpc::AgencyEdge`].

use domain::{EventBody, InputError, ProgrammeId};
use proto::v1::{self, arbetsformedlingen_service_server::ArbetsformedlingenService};
use rpc::fields::{self, required_date};
use rpc::submit::MintedKind;
use rpc::{errors, submit, AgencyEdge};
use tonic::{Request, Response, Status};

/// The service implementation.
pub struct ArbetsformedlingenApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl ArbetsformedlingenService for ArbetsformedlingenApi {
    async fn register_job_seeker(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::JobSeekerRegistered {
                    registered_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn deregister_job_seeker(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::JobSeekerDeregistered {
                    deregistered_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn request_disability_coding(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::DisabilityCodingRequested {
                    requested_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn register_disability_coding(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::DisabilityCodingRegistered {
                    registered_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn assign_programme(&self, request: Request<v1::AssignProgrammeRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let programme_id = if request.programme_id.trim().is_empty() {
            ProgrammeId(self.edge.mint(
                MintedKind::Programme,
                &extensions,
                request.write.as_ref(),
            )?)
        } else {
            ProgrammeId::parse(&request.programme_id)
                .map_err(|error| errors::invalid_input(&error))?
        };
        let reply = self
            .edge
            .record(&extensions, request.write.as_ref(), |_| {
                let programme = request.programme.trim();
                domain::values::validate_name("programme", programme)?;
                Ok(EventBody::ProgrammeAssigned {
                    programme_id,
                    programme: programme.to_owned(),
                    with_activity_allowance: request.with_activity_allowance,
                    period: fields::required_period("period", request.period.as_ref())?,
                })
            })
            .await;
        submit::with_created_id(reply, programme_id)
    }

    async fn end_programme(&self, request: Request<v1::EndProgrammeRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                if request.programme_id.trim().is_empty() {
                    return Err(InputError::new("programme_id", "is required"));
                }
                Ok(EventBody::ProgrammeEnded {
                    programme_id: ProgrammeId::parse(&request.programme_id)?,
                    ended_on: required_date("ended_on", &request.ended_on)?,
                })
            })
            .await
    }

    async fn decide_sius(&self, request: Request<v1::PeriodRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::SiusDecided {
                    period: fields::required_period("period", request.period.as_ref())?,
                })
            })
            .await
    }

    async fn end_sius(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::SiusEnded {
                    ended_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn decide_subsidy(&self, request: Request<v1::DecideSubsidyRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let employer = request.employer.trim();
                domain::values::validate_name("employer", employer)?;
                Ok(EventBody::SubsidyDecided {
                    subsidy: fields::required_subsidy("subsidy", request.subsidy)?,
                    activity_id: fields::optional_activity_id(&request.activity_id)?,
                    employer: employer.to_owned(),
                    period: fields::required_period("period", request.period.as_ref())?,
                })
            })
            .await
    }

    async fn decide_activity(&self, request: Request<v1::ActivityDecisionRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                fields::activity_decision(&request)
            })
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge.correct(&extensions, &request).await
    }
}
