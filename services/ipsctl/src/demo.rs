//! The README's demo: synthetic participants from DOMAIN.md §9 go through referral, enrolment
//! and consent over the real gRPC API; one step breaks a rule on purpose, to show how a refusal
//! is answered and recorded. Then every timeline is printed with its hash chain verified.

use chrono::{Duration, Utc};
use domain::Role;
use proto::v1;

use crate::{print, Clients};

/// A synthetic participant and the consents they give.
struct Person {
    label: &'static str,
    source: v1::ReferralSource,
    referrer_unit: &'static str,
    consents: &'static [(
        v1::ConsentParty,
        v1::ConsentParty,
        &'static [v1::DataCategory],
    )],
}

const PEOPLE: [Person; 4] = [
    Person {
        label: "Anna, 34 (sjukpenning, referred by psychiatry)",
        source: v1::ReferralSource::Vuxenpsykiatri,
        referrer_unit: "hudiksvall-vuxenpsykiatri",
        consents: &[
            (
                v1::ConsentParty::Psychiatry,
                v1::ConsentParty::IpsUnit,
                &[v1::DataCategory::HealthCoarse],
            ),
            (
                v1::ConsentParty::Forsakringskassan,
                v1::ConsentParty::IpsUnit,
                &[v1::DataCategory::BenefitDecisions],
            ),
            (
                v1::ConsentParty::IpsUnit,
                v1::ConsentParty::Forsakringskassan,
                &[v1::DataCategory::ActivitiesAndWork],
            ),
        ],
    },
    Person {
        label: "Carina, 41 (försörjningsstöd, referred by IFO)",
        source: v1::ReferralSource::Ifo,
        referrer_unit: "hudiksvall-ifo",
        consents: &[(
            v1::ConsentParty::SocialServices,
            v1::ConsentParty::IpsUnit,
            &[v1::DataCategory::SocialAssistanceStatus],
        )],
    },
    Person {
        label: "Eva, 29 (own initiative)",
        source: v1::ReferralSource::OwnInitiative,
        referrer_unit: "",
        consents: &[],
    },
    Person {
        label: "Greta, 45 (employed, full sjukpenning)",
        source: v1::ReferralSource::Forsakringskassan,
        referrer_unit: "fk-lfc-gavleborg",
        consents: &[(
            v1::ConsentParty::Forsakringskassan,
            v1::ConsentParty::IpsUnit,
            &[v1::DataCategory::BenefitDecisions],
        )],
    },
];

fn as_coach<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    rpc::identity::attach(
        request.metadata_mut(),
        "coach-17",
        Role::Coach,
        "hudiksvall-ips",
    );
    request
}

fn context(days_ago: i64) -> Option<v1::WriteContext> {
    let occurred_at =
        (Utc::now() - Duration::days(days_ago)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Some(v1::WriteContext {
        occurred_at,
        ..Default::default()
    })
}

/// Runs the demo, writing what happens to the returned text. Fails on any unexpected answer.
pub async fn run(clients: &mut Clients) -> anyhow::Result<String> {
    let mut output = String::from(
        "IPS Samverkan demo: four synthetic participants through the municipality's gRPC API\n",
    );
    let today = Utc::now().date_naive();
    let mut participants = Vec::new();
    for person in &PEOPLE {
        let referral = v1::ReferParticipantRequest {
            context: context(14),
            participant_id: String::new(),
            source: person.source as i32,
            referrer_unit: person.referrer_unit.into(),
        };
        let referred = clients
            .municipality
            .refer_participant(as_coach(referral))
            .await?
            .into_inner();
        let participant_id = referred.participant_id.clone();
        let enrolment = v1::EnrollParticipantRequest {
            context: context(12),
            participant_id: participant_id.clone(),
            unit: "hudiksvall-ips".into(),
            coach_person_id: "coach-17".into(),
        };
        clients
            .municipality
            .enroll_participant(as_coach(enrolment))
            .await?;
        for (discloser, recipient, categories) in person.consents {
            let consent = v1::GrantConsentRequest {
                context: context(12),
                participant_id: participant_id.clone(),
                consent_id: String::new(),
                discloser: *discloser as i32,
                recipient: *recipient as i32,
                data_categories: categories.iter().map(|category| *category as i32).collect(),
                valid_from: (today - Duration::days(12)).to_string(),
                valid_to: (today + Duration::days(365)).to_string(),
            };
            clients
                .municipality
                .grant_consent(as_coach(consent))
                .await?;
        }
        participants.push((person.label, participant_id));
    }

    // A rule broken on purpose: enrolling Eva a second time.
    let (_, eva) = &participants[2];
    let second_enrolment = v1::EnrollParticipantRequest {
        context: context(1),
        participant_id: eva.clone(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
    };
    match clients
        .municipality
        .enroll_participant(as_coach(second_enrolment))
        .await
    {
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            output.push_str(&format!(
                "\nA second enrolment of Eva was refused as expected: {}\n",
                status.message()
            ));
        }
        other => anyhow::bail!(
            "a second enrolment must be refused with FAILED_PRECONDITION, got {other:?}"
        ),
    }
    // Anna withdraws the psychiatry → IPS unit consent.
    let (_, anna) = &participants[0];
    let withdrawal = v1::WithdrawConsentRequest {
        context: context(0),
        participant_id: anna.clone(),
        discloser: v1::ConsentParty::Psychiatry as i32,
        recipient: v1::ConsentParty::IpsUnit as i32,
        data_categories: vec![v1::DataCategory::HealthCoarse as i32],
        effective_from: today.to_string(),
    };
    clients
        .municipality
        .withdraw_consent(as_coach(withdrawal))
        .await?;

    for (label, participant_id) in &participants {
        let verified = clients
            .timeline
            .verify_chain(v1::VerifyChainRequest {
                participant_id: participant_id.clone(),
            })
            .await?
            .into_inner();
        let request = v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            min_sequence: verified.verified_entries,
            ..Default::default()
        };
        let entries = clients
            .timeline
            .get_timeline(request)
            .await?
            .into_inner()
            .entries;
        output.push_str(&print::timeline(label, participant_id, &entries));
        output.push_str(&print::verification(&verified));
        output.push('\n');
    }
    Ok(output)
}
