//! `ips.v1.ArbetsformedlingenService`: each handler hands its request's body (built by
//! [`crate::bodies`]) to the shared [`rpc::AgencyEdge`].

use domain::ProgrammeId;
use proto::v1::{self, arbetsformedlingen_service_server::ArbetsformedlingenService};
use rpc::submit::MintedKind;
use rpc::{errors, submit, AgencyEdge};
use tonic::{Request, Response, Status};

use crate::bodies;

/// The service implementation.
pub struct ArbetsformedlingenApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl ArbetsformedlingenService for ArbetsformedlingenApi {
    async fn register_job_seeker(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::register_job_seeker).await
    }

    async fn deregister_job_seeker(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::deregister_job_seeker)
            .await
    }

    async fn request_disability_coding(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::request_disability_coding)
            .await
    }

    async fn register_disability_coding(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::register_disability_coding)
            .await
    }

    async fn assign_programme(&self, request: Request<v1::AssignProgrammeRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let programme_id = match bodies::requested_programme_id(&request)
            .map_err(|error| errors::invalid_input(&error))?
        {
            Some(programme_id) => programme_id,
            None => ProgrammeId(self.edge.mint(
                MintedKind::Programme,
                &extensions,
                request.write.as_ref(),
            )?),
        };
        let reply = self
            .edge
            .record(&extensions, request.write.as_ref(), |_| {
                bodies::assign_programme(&request, programme_id)
            })
            .await;
        submit::with_created_id(reply, programme_id)
    }

    async fn end_programme(&self, request: Request<v1::EndProgrammeRequest>) -> Reply {
        self.edge.write(request, bodies::end_programme).await
    }

    async fn decide_sius(&self, request: Request<v1::PeriodRequest>) -> Reply {
        self.edge.write(request, bodies::decide_sius).await
    }

    async fn end_sius(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::end_sius).await
    }

    async fn decide_subsidy(&self, request: Request<v1::DecideSubsidyRequest>) -> Reply {
        self.edge.write(request, bodies::decide_subsidy).await
    }

    async fn decide_activity(&self, request: Request<v1::ActivityDecisionRequest>) -> Reply {
        self.edge.write(request, bodies::decide_activity).await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        self.edge.write(request, bodies::correct_event).await
    }
}
