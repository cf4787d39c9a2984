//! `ips.v1.ForsakringskassanService`: each handler hands its request's body (built by
//! [`crate::bodies`]) to the shared [`rpc::AgencyEdge`].

use proto::v1::{self, forsakringskassan_service_server::ForsakringskassanService};
use rpc::AgencyEdge;
use tonic::{Request, Response, Status};

use crate::bodies;

/// The service implementation.
pub struct ForsakringskassanApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl ForsakringskassanService for ForsakringskassanApi {
    async fn register_benefit(&self, request: Request<v1::RegisterBenefitRequest>) -> Reply {
        self.edge.write(request, bodies::register_benefit).await
    }

    async fn end_benefit(&self, request: Request<v1::EndBenefitRequest>) -> Reply {
        self.edge.write(request, bodies::end_benefit).await
    }

    async fn receive_medical_certificate(
        &self,
        request: Request<v1::MedicalCertificateRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::receive_medical_certificate)
            .await
    }

    async fn record_avstamningsmote(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::record_avstamningsmote)
            .await
    }

    async fn establish_rehab_plan(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::establish_rehab_plan).await
    }

    async fn revise_rehab_plan(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::revise_rehab_plan).await
    }

    async fn decide_activity(&self, request: Request<v1::ActivityDecisionRequest>) -> Reply {
        self.edge.write(request, bodies::decide_activity).await
    }

    async fn make_activity_agreement(&self, request: Request<v1::ActivityPeriodRequest>) -> Reply {
        self.edge
            .write(request, bodies::make_activity_agreement)
            .await
    }

    async fn decide_dormant_benefit(&self, request: Request<v1::ActivityPeriodRequest>) -> Reply {
        self.edge
            .write(request, bodies::decide_dormant_benefit)
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        self.edge.write(request, bodies::correct_event).await
    }
}
