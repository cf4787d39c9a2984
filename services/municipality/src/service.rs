//! `ips.v1.MunicipalityService`: the IPS unit's and social services' process steps.
//!
//! Each handler parses its fields (naming the bad one) into one domain event body and hands it to
//! the shared [`rpc::AgencyEdge`], which adds caller and envelope, publishes, and waits for the
//! ledger's verdict. The cross-agency rules (enrolment needs a referral, an end never before its
//! start, ...) are the aggregate's, and come back as `FAILED_PRECONDITION` naming the rule.

use domain::values::BenefitKind;
use domain::values::{
    validate_text, CounselledBenefit, DischargeReason, DisclosurePreference, EducationLevel,
    FollowUpStatus, JobEndReason, OutreachChannel, SocialAssistanceStatus,
};
use domain::{
    ActivityId, Agency, ConsentId, EventBody, EventId, InputError, ParticipantId, PersonId,
    ReferralSource, UnitId,
};
use proto::v1::{self, municipality_service_server::MunicipalityService};
use rpc::fields::{self, required_activity_id, required_date};
use rpc::submit::MintedKind;
use rpc::{errors, identity, submit, AgencyEdge};

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

/// Maps a wire enum value to a domain value, naming the field when it is unset or unknown.
fn pick<W, D: Copy>(
    field: &str,
    wire: Result<W, prost::UnknownEnumValue>,
    table: &[(W, D)],
) -> Result<D, InputError>
where
    W: PartialEq,
{
    let wire = wire.map_err(|_| InputError::new(field, "is not a known value"))?;
    table
        .iter()
        .find(|(candidate, _)| *candidate == wire)
        .map(|(_, value)| *value)
        .ok_or_else(|| InputError::new(field, "is required"))
}

fn referral_source(value: i32) -> Result<ReferralSource, InputError> {
    use v1::ReferralSource as W;
    pick(
        "source",
        W::try_from(value),
        &[
            (W::Vuxenpsykiatri, ReferralSource::Vuxenpsykiatri),
            (W::Socialpsykiatri, ReferralSource::Socialpsykiatri),
            (W::Ifo, ReferralSource::Ifo),
            (W::Forsakringskassan, ReferralSource::Forsakringskassan),
            (W::Arbetsformedlingen, ReferralSource::Arbetsformedlingen),
            (W::OwnInitiative, ReferralSource::OwnInitiative),
        ],
    )
}

fn person(field: &str, text: &str) -> Result<PersonId, InputError> {
    PersonId::parse(text).map_err(|error| InputError::new(field, error.reason))
}

fn unit(text: &str) -> Result<UnitId, InputError> {
    UnitId::parse(text)
}

fn trimmed(field: &str, text: &str) -> Result<String, InputError> {
    validate_text(field, text)?;
    Ok(text.trim().to_owned())
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
                |_| {
                    let referrer = if request.referrer_unit.trim().is_empty() {
                        None
                    } else {
                        Some(
                            UnitId::parse(&request.referrer_unit)
                                .map_err(|error| InputError::new("referrer_unit", error.reason))?,
                        )
                    };
                    Ok(EventBody::ParticipantReferred {
                        source: referral_source(request.source)?,
                        referrer,
                    })
                },
            )
            .await
    }

    async fn enroll_participant(&self, request: Request<v1::EnrollParticipantRequest>) -> Reply {
        let (metadata, extensions, request) = request.into_parts();
        let officer = Officer::from_metadata(&metadata);
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        let unit = unit(&request.unit).map_err(invalid)?;
        let coach = person("coach_person_id", &request.coach_person_id).map_err(invalid)?;
        let body = match self.places.placing(&unit.0, &coach.0, &officer).await {
            Placing::Enrol => EventBody::ParticipantEnrolled { unit, coach },
            Placing::WaitingList => EventBody::PlacedOnWaitingList { unit },
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
                |_| Ok(body),
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
                |_| {
                    Ok(EventBody::ParticipantReEnrolled {
                        unit: unit(&request.unit)?,
                        coach: person("coach_person_id", &request.coach_person_id)?,
                    })
                },
            )
            .await
    }

    async fn grant_consent(&self, request: Request<v1::GrantConsentRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        let participant_id =
            fields::required_participant_id(&request.participant_id).map_err(invalid)?;
        let consent_id = if request.consent_id.trim().is_empty() {
            ConsentId(self.edge.mint_for(
                MintedKind::Consent,
                &extensions,
                request.context.as_ref(),
                participant_id,
            )?)
        } else {
            ConsentId::parse(&request.consent_id).map_err(invalid)?
        };
        let reply = self
            .edge
            .record_for(
                &extensions,
                request.context.as_ref(),
                participant_id,
                |_| {
                    Ok(EventBody::ConsentGranted {
                        consent_id,
                        discloser: fields::consent_party("discloser", request.discloser)?,
                        recipient: fields::consent_party("recipient", request.recipient)?,
                        data_categories: fields::data_categories(
                            "data_categories",
                            &request.data_categories,
                        )?,
                        valid_from: required_date("valid_from", &request.valid_from)?,
                        valid_to: required_date("valid_to", &request.valid_to)?,
                    })
                },
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
                    Ok(EventBody::ConsentWithdrawn {
                        discloser: fields::consent_party("discloser", request.discloser)?,
                        recipient: fields::consent_party("recipient", request.recipient)?,
                        data_categories: fields::data_categories(
                            "data_categories",
                            &request.data_categories,
                        )?,
                        effective_from: fields::optional_date(
                            "effective_from",
                            &request.effective_from,
                        )?
                        .unwrap_or(domain::business_date(context.occurred_at)),
                    })
                },
            )
            .await
    }

    async fn protect_identity(&self, request: Request<v1::ProtectIdentityRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let allowed_readers = request
                    .allowed_person_ids
                    .iter()
                    .map(|person_id| person("allowed_person_ids", person_id))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(EventBody::IdentityProtected { allowed_readers })
            })
            .await
    }

    async fn decline_referral(&self, request: Request<v1::DeclineReferralRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ReferralDeclined {
                    reason: trimmed("reason", &request.reason)?,
                })
            })
            .await
    }

    async fn assign_coach(&self, request: Request<v1::AssignCoachRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::CoachAssigned {
                    coach: person("coach_person_id", &request.coach_person_id)?,
                })
            })
            .await
    }

    async fn pause_participant(&self, request: Request<v1::PauseParticipantRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ParticipantPaused {
                    reason: trimmed("reason", &request.reason)?,
                })
            })
            .await
    }

    async fn resume_participant(&self, request: Request<v1::ParticipantWrite>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, Some(&request), |_| {
                Ok(EventBody::ParticipantResumed)
            })
            .await
    }

    async fn discharge_participant(
        &self,
        request: Request<v1::DischargeParticipantRequest>,
    ) -> Reply {
        let (metadata, extensions, request) = request.into_parts();
        let officer = Officer::from_metadata(&metadata);
        use v1::DischargeReason as W;
        let reply = self
            .edge
            .record(&extensions, request.write.as_ref(), |_| {
                let reason = pick(
                    "reason",
                    W::try_from(request.reason),
                    &[
                        (W::EmployedAndStable, DischargeReason::EmployedAndStable),
                        (W::Studies, DischargeReason::Studies),
                        (W::Moved, DischargeReason::Moved),
                        (W::PoorHealth, DischargeReason::PoorHealth),
                        (W::LostContact, DischargeReason::LostContact),
                        (W::Declined, DischargeReason::Declined),
                        (W::Other, DischargeReason::Other),
                    ],
                )?;
                Ok(EventBody::ParticipantDischarged { reason })
            })
            .await?;
        self.offer_freed_place(&extensions, &officer, &request, reply.get_ref())
            .await;
        Ok(reply)
    }

    async fn record_profile(&self, request: Request<v1::RecordProfileRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::EducationLevel as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let education_level = pick(
                    "education_level",
                    W::try_from(request.education_level),
                    &[
                        (W::PrimaryIncomplete, EducationLevel::PrimaryIncomplete),
                        (W::Primary, EducationLevel::Primary),
                        (W::UpperSecondary, EducationLevel::UpperSecondary),
                        (W::PostSecondary, EducationLevel::PostSecondary),
                    ],
                )?;
                Ok(EventBody::ProfileRecorded {
                    preferences: request.preferences.trim().to_owned(),
                    hours_per_week_wanted: fields::hours_per_week(
                        "hours_per_week_wanted",
                        request.hours_per_week_wanted,
                    )?,
                    education_level,
                })
            })
            .await
    }

    async fn record_benefits_counselling(
        &self,
        request: Request<v1::RecordBenefitsCounsellingRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::CounselledBenefit as W;
        let table = [
            (
                W::Sjukpenning,
                CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning),
            ),
            (
                W::Rehabiliteringspenning,
                CounselledBenefit::Forsakringskassan(BenefitKind::Rehabiliteringspenning),
            ),
            (
                W::Aktivitetsersattning,
                CounselledBenefit::Forsakringskassan(BenefitKind::Aktivitetsersattning),
            ),
            (
                W::Sjukersattning,
                CounselledBenefit::Forsakringskassan(BenefitKind::Sjukersattning),
            ),
            (W::Forsorjningsstod, CounselledBenefit::Forsorjningsstod),
            (W::Aktivitetsstod, CounselledBenefit::Aktivitetsstod),
            (W::Akassa, CounselledBenefit::Akassa),
            (W::Studiestod, CounselledBenefit::Studiestod),
        ];
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                if request.benefits_discussed.len() > table.len() {
                    return Err(InputError::new(
                        "benefits_discussed",
                        "names more benefits than exist",
                    ));
                }
                let benefits_discussed = request
                    .benefits_discussed
                    .iter()
                    .map(|value| pick("benefits_discussed", W::try_from(*value), &table))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(EventBody::BenefitsCounsellingGiven { benefits_discussed })
            })
            .await
    }

    async fn record_disclosure_preference(
        &self,
        request: Request<v1::RecordDisclosurePreferenceRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::DisclosurePreference as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let preference = pick(
                    "preference",
                    W::try_from(request.preference),
                    &[
                        (W::None, DisclosurePreference::None),
                        (W::NeedsOnly, DisclosurePreference::NeedsOnly),
                        (W::Diagnosis, DisclosurePreference::Diagnosis),
                    ],
                )?;
                Ok(EventBody::DisclosurePreferenceRecorded { preference })
            })
            .await
    }

    async fn record_employer_contact(
        &self,
        request: Request<v1::RecordEmployerContactRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::EmployerContactMade {
                    employer: trimmed("employer", &request.employer)?,
                    face_to_face: request.face_to_face,
                    with_participant: request.with_participant,
                })
            })
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
                let employer = request.employer.trim();
                Ok(EventBody::ActivityProposed {
                    activity_id,
                    kind: fields::activity_kind("kind", request.kind)?,
                    employer: (!employer.is_empty()).then(|| employer.to_owned()),
                    hours_per_week: fields::hours_per_week(
                        "hours_per_week",
                        request.hours_per_week,
                    )?,
                    planned_start: required_date("planned_start", &request.planned_start)?,
                    planned_end: fields::optional_date("planned_end", &request.planned_end)?,
                    subsidy: fields::optional_subsidy("subsidy", request.subsidy)?,
                    at_own_employer: request.at_own_employer,
                })
            })
            .await;
        submit::with_created_id(reply, activity_id)
    }

    async fn start_activity(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ActivityStarted {
                    activity_id: required_activity_id(&request.activity_id)?,
                    started_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn end_activity(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ActivityEnded {
                    activity_id: required_activity_id(&request.activity_id)?,
                    ended_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn start_job(&self, request: Request<v1::StartJobRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::JobStarted {
                    activity_id: required_activity_id(&request.activity_id)?,
                    employer: trimmed("employer", &request.employer)?,
                    occupation: trimmed("occupation", &request.occupation)?,
                    competitive: request.competitive,
                    subsidy: fields::optional_subsidy("subsidy", request.subsidy)?,
                    hours_per_week: fields::hours_per_week(
                        "hours_per_week",
                        request.hours_per_week,
                    )?,
                    started_on: required_date("started_on", &request.started_on)?,
                })
            })
            .await
    }

    async fn change_hours(&self, request: Request<v1::ChangeHoursRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::HoursChanged {
                    activity_id: required_activity_id(&request.activity_id)?,
                    hours_per_week: fields::hours_per_week(
                        "hours_per_week",
                        request.hours_per_week,
                    )?,
                    from: required_date("from", &request.from)?,
                })
            })
            .await
    }

    async fn end_job(&self, request: Request<v1::EndJobRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::JobEndReason as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let reason = pick(
                    "reason",
                    W::try_from(request.reason),
                    &[
                        (W::Resigned, JobEndReason::Resigned),
                        (W::Dismissed, JobEndReason::Dismissed),
                        (W::FixedTermEnded, JobEndReason::FixedTermEnded),
                        (W::Health, JobEndReason::Health),
                        (W::Other, JobEndReason::Other),
                    ],
                )?;
                Ok(EventBody::JobEnded {
                    activity_id: required_activity_id(&request.activity_id)?,
                    ended_on: required_date("ended_on", &request.ended_on)?,
                    reason,
                })
            })
            .await
    }

    async fn start_studies(&self, request: Request<v1::StartStudiesRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::StudiesStarted {
                    activity_id: required_activity_id(&request.activity_id)?,
                    programme: trimmed("programme", &request.programme)?,
                    started_on: required_date("started_on", &request.started_on)?,
                })
            })
            .await
    }

    async fn end_studies(&self, request: Request<v1::ActivityDateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::StudiesEnded {
                    activity_id: required_activity_id(&request.activity_id)?,
                    ended_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn record_follow_along_contact(
        &self,
        request: Request<v1::RecordFollowAlongContactRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::FollowAlongContact {
                    activity_id: fields::optional_activity_id(&request.activity_id)?,
                    contact_on: required_date("contact_on", &request.contact_on)?,
                })
            })
            .await
    }

    async fn record_follow_up(&self, request: Request<v1::RecordFollowUpRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::FollowUpStatus as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let status = pick(
                    "status",
                    W::try_from(request.status),
                    &[
                        (W::Searching, FollowUpStatus::Searching),
                        (W::InActivity, FollowUpStatus::InActivity),
                        (W::Working, FollowUpStatus::Working),
                        (W::Studying, FollowUpStatus::Studying),
                        (W::Paused, FollowUpStatus::Paused),
                    ],
                )?;
                Ok(EventBody::FollowUpRecorded {
                    status,
                    obstacles: request.obstacles.trim().to_owned(),
                    helping_factors: request.helping_factors.trim().to_owned(),
                })
            })
            .await
    }

    async fn record_outreach_attempt(
        &self,
        request: Request<v1::RecordOutreachAttemptRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::OutreachChannel as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let channel = pick(
                    "channel",
                    W::try_from(request.channel),
                    &[
                        (W::Phone, OutreachChannel::Phone),
                        (W::TextMessage, OutreachChannel::TextMessage),
                        (W::Letter, OutreachChannel::Letter),
                        (W::HomeVisit, OutreachChannel::HomeVisit),
                        (
                            W::ThroughTreatmentTeam,
                            OutreachChannel::ThroughTreatmentTeam,
                        ),
                    ],
                )?;
                Ok(EventBody::OutreachAttempted { channel })
            })
            .await
    }

    async fn record_sip_held(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::SipHeld {
                    held_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn record_sip_established(&self, request: Request<v1::DateRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::SipEstablished {
                    established_on: required_date("date", &request.date)?,
                })
            })
            .await
    }

    async fn record_social_assistance(
        &self,
        request: Request<v1::RecordSocialAssistanceRequest>,
    ) -> Reply {
        let (_, extensions, request) = request.into_parts();
        use v1::SocialAssistanceStatus as W;
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                let status = pick(
                    "status",
                    W::try_from(request.status),
                    &[
                        (W::Granted, SocialAssistanceStatus::Granted),
                        (W::Denied, SocialAssistanceStatus::Denied),
                        (W::Ended, SocialAssistanceStatus::Ended),
                    ],
                )?;
                Ok(EventBody::SocialAssistanceDecided { status })
            })
            .await
    }

    async fn accept_activity_in_planning(&self, request: Request<v1::ActivityRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge
            .record(&extensions, request.write.as_ref(), |_| {
                Ok(EventBody::ActivityAcceptedInPlanning {
                    activity_id: required_activity_id(&request.activity_id)?,
                })
            })
            .await
    }

    async fn correct_event(&self, request: Request<v1::CorrectEventRequest>) -> Reply {
        let (_, extensions, request) = request.into_parts();
        self.edge.correct(&extensions, &request).await
    }
}
