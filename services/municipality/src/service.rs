//! `ips.v1.MunicipalityService`: referral, enrolment, and consent.
//!
//! Each handler: who is calling, parse and check every field (naming the bad one), build the
//! domain event, submit. The cross-agency rules (enrolment needs a referral, ...) are the
//! aggregate's, and come back as `FAILED_PRECONDITION` with the rule's name.

use chrono::Utc;
use domain::{Agency, ConsentId, DataCategory, EventBody, InputError, ParticipantId, ReferralSource, RetentionClass, Submission, UnitId};
use proto::v1::{self, municipality_service_server::MunicipalityService};
use rpc::{errors, fields, identity, submit};
use tonic::{Request, Response, Status};

/// The service implementation.
pub struct MunicipalityApi {
    pub(crate) submitter: rpc::AgencySubmitter,
}

const AGENCY: Agency = Agency::Municipality;

fn invalid(error: InputError) -> Status {
    errors::invalid_input(&error)
}

fn referral_source(value: i32) -> Result<ReferralSource, InputError> {
    match v1::ReferralSource::try_from(value) {
        Ok(v1::ReferralSource::Vuxenpsykiatri) => Ok(ReferralSource::Vuxenpsykiatri),
        Ok(v1::ReferralSource::Socialpsykiatri) => Ok(ReferralSource::Socialpsykiatri),
        Ok(v1::ReferralSource::Ifo) => Ok(ReferralSource::Ifo),
        Ok(v1::ReferralSource::Forsakringskassan) => Ok(ReferralSource::Forsakringskassan),
        Ok(v1::ReferralSource::Arbetsformedlingen) => Ok(ReferralSource::Arbetsformedlingen),
        Ok(v1::ReferralSource::OwnInitiative) => Ok(ReferralSource::OwnInitiative),
        Ok(v1::ReferralSource::Unspecified) | Err(_) => Err(InputError::new("source", "must name where the referral came from")),
    }
}

impl MunicipalityApi {
    async fn submit(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        context: Option<&v1::WriteContext>,
        participant_id: ParticipantId,
        data_category: DataCategory,
        body: impl FnOnce(&fields::ParsedWriteContext) -> Result<EventBody, InputError>,
    ) -> Result<Response<v1::WriteResponse>, Status> {
        let actor = identity::caller(metadata)?;
        let context = fields::write_context(context, Utc::now()).map_err(invalid)?;
        let body = body(&context).map_err(invalid)?;
        let envelope = submit::envelope(AGENCY, actor, participant_id, &context, data_category, RetentionClass::SocialServicesFile);
        self.submitter.submit(Submission { envelope, body }).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl MunicipalityService for MunicipalityApi {
    async fn refer_participant(&self, request: Request<v1::ReferParticipantRequest>) -> Result<Response<v1::WriteResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let participant_id = if request.participant_id.trim().is_empty() {
            let actor = identity::caller(&metadata)?;
            let context = fields::write_context(request.context.as_ref(), Utc::now()).map_err(invalid)?;
            submit::new_participant_id(AGENCY, &actor, context.request_id.as_deref())
        } else {
            ParticipantId::parse(&request.participant_id).map_err(invalid)?
        };
        self.submit(&metadata, request.context.as_ref(), participant_id, DataCategory::Participation, |_| {
            let referrer = if request.referrer_unit.trim().is_empty() {
                None
            } else {
                Some(UnitId::parse(&request.referrer_unit).map_err(|error| InputError::new("referrer_unit", error.reason))?)
            };
            Ok(EventBody::ParticipantReferred { source: referral_source(request.source)?, referrer })
        })
        .await
    }

    async fn enroll_participant(&self, request: Request<v1::EnrollParticipantRequest>) -> Result<Response<v1::WriteResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let participant_id = fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        self.submit(&metadata, request.context.as_ref(), participant_id, DataCategory::Participation, |_| {
            Ok(EventBody::ParticipantEnrolled {
                unit: UnitId::parse(&request.unit)?,
                coach: domain::PersonId::parse(&request.coach_person_id).map_err(|error| InputError::new("coach_person_id", error.reason))?,
            })
        })
        .await
    }

    async fn grant_consent(&self, request: Request<v1::GrantConsentRequest>) -> Result<Response<v1::WriteResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let participant_id = fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        self.submit(&metadata, request.context.as_ref(), participant_id, DataCategory::Consent, |_| {
            let consent_id = if request.consent_id.trim().is_empty() {
                ConsentId(uuid::Uuid::new_v4())
            } else {
                ConsentId::parse(&request.consent_id)?
            };
            let body = EventBody::ConsentGranted {
                consent_id,
                discloser: fields::consent_party("discloser", request.discloser)?,
                recipient: fields::consent_party("recipient", request.recipient)?,
                data_categories: fields::data_categories("data_categories", &request.data_categories)?,
                valid_from: fields::required_date("valid_from", &request.valid_from)?,
                valid_to: fields::required_date("valid_to", &request.valid_to)?,
            };
            body.validate()?;
            Ok(body)
        })
        .await
    }

    async fn withdraw_consent(&self, request: Request<v1::WithdrawConsentRequest>) -> Result<Response<v1::WriteResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let participant_id = fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        self.submit(&metadata, request.context.as_ref(), participant_id, DataCategory::Consent, |context| {
            let effective_from = if request.effective_from.trim().is_empty() {
                context.occurred_at.date_naive()
            } else {
                fields::required_date("effective_from", &request.effective_from)?
            };
            let body = EventBody::ConsentWithdrawn {
                discloser: fields::consent_party("discloser", request.discloser)?,
                recipient: fields::consent_party("recipient", request.recipient)?,
                data_categories: fields::data_categories("data_categories", &request.data_categories)?,
                effective_from,
            };
            body.validate()?;
            Ok(body)
        })
        .await
    }
}
