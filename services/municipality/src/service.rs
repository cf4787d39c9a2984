//! `ips.v1.MunicipalityService`: the IPS unit's and social services' process steps.
//!
//! Each handler has its request's fields parsed (naming the bad one) into one domain event body
//! by [`crate::bodies`] and hands it to the shared [`rpc::AgencyEdge`], which adds caller and
//! envelope, publishes, and waits for the ledger's verdict. The cross-agency rules (enrolment needs a referral, an end never before its
//! start, ...) are the aggregate's, and come back as `FAILED_PRECONDITION` naming the rule.

use domain::{
    ActivityId, Agency, ConsentId, EventBody, EventId, InputError, ParticipantId, PersonId, UnitId,
};
use proto::v1::{self, municipality_service_server::MunicipalityService};
use rpc::fields;
use rpc::submit::MintedKind;
use rpc::{errors, identity, submit, AgencyEdge};

use crate::bodies;
use crate::places::{Officer, Placing};
use tonic::{Request, Response, Status};

/// The service implementation.
pub struct MunicipalityApi {
    pub(crate) edge: AgencyEdge,
    pub(crate) places: crate::places::Places,
}

type Reply = Result<Response<v1::WriteResponse>, Status>;

const AGENCY: Agency = Agency::Municipality;

fn invalid(error: InputError) -> Status {
    errors::invalid_input(&error)
}

impl MunicipalityApi {
    /// After a discharge, offers the freed place to the unit's longest-waiting participant.
    /// Best effort: the discharge is recorded either way, and the waiting list stays visible.
    async fn offer_freed_place(
        &self,
        extensions: &tonic::Extensions,
        officer: &Officer,
        request: &v1::DischargeParticipantRequest,
        discharged: &v1::WriteResponse,
    ) {
        if discharged.status != v1::WriteStatus::Accepted as i32 {
            return;
        }
        let Some((waiting, unit_name, coach_name)) = self
            .places
            .freed_place(&discharged.participant_id, officer)
            .await
        else {
            return;
        };
        let (Ok(participant_id), Ok(unit), Ok(coach)) = (
            ParticipantId::parse(&waiting),
            UnitId::parse(&unit_name),
            PersonId::parse(&coach_name),
        ) else {
            return;
        };
        let (Ok(caller), Ok(discharged_id)) = (
            identity::caller(extensions),
            ParticipantId::parse(&discharged.participant_id),
        ) else {
            return;
        };
        let context = v1::WriteContext {
            causation_id: discharged.event_id.clone(),
            ..request
                .write
                .as_ref()
                .and_then(|write| write.context.clone())
                .unwrap_or_default()
        };
        // One freed place, one offer: the offer's event id is derived from the discharge's.
        // A repeated discharge finds the next participant in line (the first is offered
        // already) but names the same offer, which JetStream's duplicate window, and after it
        // the events table's unique event id, records once.
        let offer_event_id = EventId(submit::minted_id(
            MintedKind::WaitingListOffer,
            AGENCY,
            &caller.actor,
            discharged_id,
            Some(&discharged.event_id),
        ));
        let offered = self
            .edge
            .record_derived(
                extensions,
                Some(&context),
                participant_id,
                offer_event_id,
                |_| Ok(EventBody::WaitingListPlaceOffered { unit, coach }),
            )
            .await;
        if let Err(status) = offered {
            tracing::warn!(code = ?status.code(), message = status.message(), "could not offer the freed place");
        }
    }
}

#[tonic::async_trait]
impl MunicipalityService for MunicipalityApi {
    async fn refer_participant(&self, request: Request<v1::ReferParticipantRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let participant_id = if request.participant_id.trim().is_empty() {
            let actor = identity::caller(&extensions)?.actor;
            let context = fields::write_context(request.context.as_ref(), self.edge.clock.now())
                .map_err(invalid)?;
            submit::new_participant_id(AGENCY, &actor, context.request_id.as_deref())
        } else {
            ParticipantId::parse(&request.participant_id).map_err(invalid)?
        };
        self.edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |_| bodies::refer_participant(&request),
            )
            .await
    }

    async fn enroll_participant(&self, request: Request<v1::EnrollParticipantRequest>) -> Reply {
        let (metadata, extensions, request) = request.into_parts();
        let officer = Officer::from_metadata(&metadata);
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        let (unit, coach) = bodies::enrolment_target(&request).map_err(invalid)?;
        let on_waiting_list = match self.places.placing(&unit.0, &coach.0, &officer).await {
            Placing::Enrol => false,
            Placing::WaitingList => true,
            Placing::CoachFull { coaches_with_room } => {
                return Err(errors::rule_broken(
                    "coach_caseload_full",
                    &format!("coach_caseload_full: {coach} already has the maximum caseload; coaches with room: {}", coaches_with_room.join(", ")),
                    "",
                ));
            }
        };
        self.edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |_| bodies::enroll_participant(&request, on_waiting_list),
            )
            .await
    }

    async fn re_enroll_participant(&self, request: Request<v1::EnrollParticipantRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        self.edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |_| bodies::re_enroll_participant(&request),
            )
            .await
    }

    async fn grant_consent(&self, request: Request<v1::GrantConsentRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        let consent_id = match bodies::requested_consent_id(&request).map_err(invalid)? {
            Some(consent_id) => consent_id,
            None => ConsentId(self.edge.mint_for(
                MintedKind::Consent,
                &extensions,
                request.context.as_ref(),
                participant_id,
            )?),
        };
        let reply = self
            .edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |_| bodies::grant_consent(&request, consent_id),
            )
            .await;
        submit::with_created_id(reply, consent_id)
    }

    async fn withdraw_consent(&self, request: Request<v1::WithdrawConsentRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        self.edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |context| {
                    bodies::withdraw_consent(&request, domain::business_date(context.occurred_at))
                },
            )
            .await
    }

    async fn protect_identity(&self, request: Request<v1::ProtectIdentityRequest>) -> Reply {
        self.edge.write(request, bodies::protect_identity).await
    }

    async fn decline_referral(&self, request: Request<v1::DeclineReferralRequest>) -> Reply {
        self.edge.write(request, bodies::decline_referral).await
    }

    async fn assign_coach(&self, request: Request<v1::AssignCoachRequest>) -> Reply {
        self.edge.write(request, bodies::assign_coach).await
    }

    async fn pause_participant(&self, request: Request<v1::PauseParticipantRequest>) -> Reply {
        self.edge.write(request, bodies::pause_participant).await
    }

    async fn resume_participant(&self, request: Request<v1::ParticipantWrite>) -> Reply {
        self.edge.write(request, bodies::resume_participant).await
    }

    async fn discharge_participant(
        &self,
        request: Request<v1::DischargeParticipantRequest>,
    ) -> Reply {
        let (metadata, extensions, request) = request.into_parts();
        let officer = Officer::from_metadata(&metadata);
        let reply = self
            .edge
            .record(&extensions, request.write.as_ref(), |_| {
                bodies::discharge_participant(&request)
            })
            .await?;
        self.offer_freed_place(&extensions, &officer, &request, reply.get_ref())
            .await;
        Ok(reply)
    }

    async fn record_profile(&self, request: Request<v1::RecordProfileRequest>) -> Reply {
        self.edge.write(request, bodies::record_profile).await
    }

    async fn record_benefits_counselling(
        &self,
        request: Request<v1::RecordBenefitsCounsellingRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_benefits_counselling)
            .await
    }

    async fn record_disclosure_preference(
        &self,
        request: Request<v1::RecordDisclosurePreferenceRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_disclosure_preference)
            .await
    }

    async fn record_employer_contact(
        &self,
        request: Request<v1::RecordEmployerContactRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_employer_contact)
            .await
    }

    async fn propose_activity(&self, request: Request<v1::ProposeActivityRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let activity_id =
            match fields::optional_activity_id(&request.activity_id).map_err(invalid)? {
                Some(activity_id) => activity_id,
                None => ActivityId(self.edge.mint(
                    MintedKind::Activity,
                    &extensions,
                    request.write.as_ref(),
                )?),
            };
        let reply = self
            .edge
            .record(&extensions, request.write.as_ref(), |_| {
                bodies::propose_activity(&request, activity_id)
            })
            .await;
        submit::with_created_id(reply, activity_id)
    }

    async fn start_activity(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        self.edge.write(request, bodies::start_activity).await
    }

    async fn end_activity(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        self.edge.write(request, bodies::end_activity).await
    }

    async fn start_job(&self, request: Request<v1::StartJobRequest>) -> Reply {
        self.edge.write(request, bodies::start_job).await
    }

    async fn change_hours(&self, request: Request<v1::ChangeHoursRequest>) -> Reply {
        self.edge.write(request, bodies::change_hours).await
    }

    async fn end_job(&self, request: Request<v1::EndJobRequest>) -> Reply {
        self.edge.write(request, bodies::end_job).await
    }

    async fn start_studies(&self, request: Request<v1::StartStudiesRequest>) -> Reply {
        self.edge.write(request, bodies::start_studies).await
    }

    async fn end_studies(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        self.edge.write(request, bodies::end_studies).await
    }

    async fn record_follow_along_contact(
        &self,
        request: Request<v1::RecordFollowAlongContactRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_follow_along_contact)
            .await
    }

    async fn record_follow_up(&self, request: Request<v1::RecordFollowUpRequest>) -> Reply {
        self.edge.write(request, bodies::record_follow_up).await
    }

    async fn record_outreach_attempt(
        &self,
        request: Request<v1::RecordOutreachAttemptRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_outreach_attempt)
            .await
    }

    async fn record_sip_held(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge.write(request, bodies::record_sip_held).await
    }

    async fn record_sip_established(&self, request: Request<v1::DateRequest>) -> Reply {
        self.edge
            .write(request, bodies::record_sip_established)
            .await
    }

    async fn record_benefit_self_report(
        &self,
        request: Request<v1::RecordBenefitSelfReportRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_benefit_self_report)
            .await
    }

    async fn record_social_assistance(
        &self,
        request: Request<v1::RecordSocialAssistanceRequest>,
    ) -> Reply {
        self.edge
            .write(request, bodies::record_social_assistance)
            .await
    }

    async fn accept_activity_in_planning(&self, request: Request<v1::ActivityRequest>) -> Reply {
        self.edge
            .write(request, bodies::accept_activity_in_planning)
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        self.edge.write(request, bodies::correct_event).await
    }
}
