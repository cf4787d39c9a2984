//! `ips.v1.ForsakringskassanService`: each handler parses its fields into one domain event body
//! and hands it to the shared [`rpc::AgencyEdge`].

use domain::EventBody;
use proto::v1::{self, forsakringskassan_service_server::ForsakringskassanService};
use rpc::fields::{self, required_date};
use rpc::AgencyEdge;
use tonic::{Request, Response, Status};

/// The service implementation.
pub struct ForsakringskassanApi {
    pub(crate) edge: AgencyEdge,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

#[tonic::async_trait]
impl ForsakringskassanService for ForsakringskassanApi {
    async fn register_benefit(&self, request: Request<v1::RegisterBenefitRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::BenefitRegistered {
                    benefit: fields::benefit_kind("benefit", request.benefit)?,
                    degree_percent: fields::degree_percent(
                        "degree_percent",
                        request.degree_percent,
                    )?,
                    period: fields::required_period("period", request.period.as_ref())?,
                    employed: request.employed,
                })
            })
            .await
    }

    async fn end_benefit(&self, request: Request<v1::EndBenefitRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::BenefitEnded {
                    benefit: fields::benefit_kind("benefit", request.benefit)?,
                    ended_on: required_date("ended_on", &request.ended_on)?,
                })
            })
            .await
    }

    async fn receive_medical_certificate(
        &self,
        request: Request<v1::MedicalCertificateRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::MedicalCertificateReceived {
                    period: fields::required_period("period", request.period.as_ref())?,
                    degree_percent: fields::degree_percent(
                        "degree_percent",
                        request.degree_percent,
                    )?,
                })
            })
            .await
    }

    async fn record_avstamningsmote(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::AvstamningsmoteHeld {
                    held_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn establish_rehab_plan(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::RehabPlanEstablished {
                    established_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn revise_rehab_plan(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::RehabPlanRevised {
                    revised_on: required_date("date", &request.date)?,
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

    async fn make_activity_agreement(&self, request: Request<v1::ActivityPeriodRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ActivityAgreementMade {
                    activity_id: fields::required_activity_id(&request.activity_id)?,
                    valid: fields::required_period("valid", request.valid.as_ref())?,
                })
            })
            .await
    }

    async fn decide_dormant_benefit(&self, request: Request<v1::ActivityPeriodRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::DormantBenefitDecided {
                    activity_id: fields::required_activity_id(&request.activity_id)?,
                    valid: fields::required_period("valid", request.valid.as_ref())?,
                })
            })
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge.correct(&extensions, &request).await
    }
}
