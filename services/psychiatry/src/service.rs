//! `ips.v1.PsychiatryService`: each handler hands its request's body (built by
//! [`crate::bodies`]) to the shared [`rpc::AgencyEdge`].

use proto::v1::{self, psychiatry_service_server::PsychiatryService};
use rpc::AgencyEdge;
use tonic::{Request, Response, Status};

use crate::bodies;

/// The service implementation.
pub struct PsychiatryApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl PsychiatryService for PsychiatryApi {
    async fn send_ips_referral(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::send_ips_referral).await
    }

    async fn record_treatment_team_meeting(
        &self,
        request: Request<v1::TreatmentTeamMeetingRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_treatment_team_meeting)
            .await
    }

    async fn issue_medical_certificate(
        &self,
        request: Request<v1::IssueMedicalCertificateRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::issue_medical_certificate)
            .await
    }

    async fn change_availability(&self, request: Request<v1::ChangeAvailabilityRequest>) -> Reply {
        self.edge.write(request, bodies::change_availability).await
    }

    async fn report_discharge_ready(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::report_discharge_ready)
            .await
    }

    async fn record_inpatient_admission(
        &self,
        request: Request<v1::InpatientAdmissionRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_inpatient_admission)
            .await
    }

    async fn record_inpatient_discharge(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::record_inpatient_discharge)
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        self.edge.write(request, bodies::correct_event).await
    }
}
