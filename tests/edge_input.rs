//! Edge input through the real gRPC API (issue 9, defects 1 and 7): what an agency service
//! accepts must be storable in PostgreSQL, and malformed input must get the documented code.
//!
//! A NUL in a text field once passed the edge and stalled the ledger's lane when PostgreSQL
//! refused it; a request over the size limit answered `OUT_OF_RANGE`, invalid UTF-8 `INTERNAL`,
//! and a date in year 10000 was accepted. Each case here goes through TLS, the token check, the
//! codec and the service, as a client would.

use std::marker::PhantomData;

use domain::Role;
use prost::Message;
use proto::v1;
use testkit::{as_auditor, as_caller, as_coach, Stack};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;
use tonic_types::StatusExt;

/// The field a status's BadRequest detail names.
fn violated_field(status: &tonic::Status) -> Option<String> {
    status.get_details_bad_request().and_then(|bad_request| {
        bad_request
            .field_violations
            .first()
            .map(|violation| violation.field.clone())
    })
}

fn write(participant_id: &str) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: None,
        participant_id: participant_id.into(),
    })
}

fn employer_contact(participant_id: &str, employer: &str) -> v1::RecordEmployerContactRequest {
    v1::RecordEmployerContactRequest {
        write: write(participant_id),
        employer: employer.into(),
        face_to_face: true,
        with_participant: false,
    }
}

/// Asserts `reply` is INVALID_ARGUMENT naming `field`.
fn assert_invalid<T: std::fmt::Debug>(
    case: &str,
    reply: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
) {
    match reply {
        Ok(response) => panic!("{case}: accepted: {response:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
            assert_eq!(
                violated_field(&status).as_deref(),
                Some(field),
                "{case}: {status:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_bidi_and_zero_width_characters_are_refused_naming_the_field() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let participant_id = uuid::Uuid::new_v4().to_string();

    let reply = municipality
        .record_employer_contact(as_coach(employer_contact(&participant_id, "Acme\u{0}Corp")))
        .await;
    assert_invalid("NUL in an employer", reply, "employer");

    let reply = municipality
        .record_employer_contact(as_coach(employer_contact(
            &participant_id,
            "Acme\u{202E}proC",
        )))
        .await;
    assert_invalid("right-to-left override in an employer", reply, "employer");

    let reply = municipality
        .start_job(as_coach(v1::StartJobRequest {
            write: write(&participant_id),
            activity_id: uuid::Uuid::new_v4().to_string(),
            employer: "Acme".into(),
            occupation: "Snick\u{200B}are".into(),
            competitive: true,
            subsidy: v1::Subsidy::Unspecified as i32,
            hours_per_week: 20,
            started_on: "2026-03-02".into(),
        }))
        .await;
    assert_invalid("zero-width space in an occupation", reply, "occupation");

    let reply = municipality
        .pause_participant(as_coach(v1::PauseParticipantRequest {
            write: write(&participant_id),
            reason: "sjuk\u{7}".into(),
        }))
        .await;
    assert_invalid("BEL in a reason", reply, "reason");

    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_keeps_tabs_and_newlines() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = stack.enrolled_participant("coach-17", None).await?;
    let mut municipality = stack.municipality().await?;
    let preferences = "Vill arbeta med djur.\n\tHelst förmiddagar.";
    let profile = municipality
        .record_profile(as_coach(v1::RecordProfileRequest {
            write: write(&participant_id),
            preferences: preferences.into(),
            hours_per_week_wanted: 20,
            education_level: v1::EducationLevel::UpperSecondary as i32,
        }))
        .await?
        .into_inner();
    assert_eq!(
        profile.status,
        v1::WriteStatus::Accepted as i32,
        "{profile:?}"
    );
    let stored: String = sqlx::query_scalar(
        "SELECT payload->'body'->>'preferences' FROM events WHERE event_type = 'ProfileRecorded'",
    )
    .fetch_one(&stack.database.pool().await?)
    .await?;
    assert_eq!(stored, preferences);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_outside_1900_to_2199_are_refused_naming_the_field() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let participant_id = uuid::Uuid::new_v4().to_string();
    for (valid_from, valid_to, field) in [
        ("+10000-01-01", "2026-12-31", "valid_from"),
        ("1899-12-31", "2026-12-31", "valid_from"),
        ("2026-01-01", "2200-01-01", "valid_to"),
    ] {
        let reply = municipality
            .grant_consent(as_coach(v1::GrantConsentRequest {
                context: None,
                participant_id: participant_id.clone(),
                consent_id: String::new(),
                discloser: v1::ConsentParty::Forsakringskassan as i32,
                recipient: v1::ConsentParty::IpsUnit as i32,
                data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
                valid_from: valid_from.into(),
                valid_to: valid_to.into(),
            }))
            .await;
        assert_invalid(&format!("{valid_from}..{valid_to}"), reply, field);
    }
    let reply = municipality
        .record_sip_held(as_coach(v1::DateRequest {
            write: write(&participant_id),
            date: "+10000-01-01".into(),
        }))
        .await;
    assert_invalid("SIP in year 10000", reply, "date");
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_resource_exhausted() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let oversized = "x".repeat(rpc::ServerConfig::default().request_size_max_bytes + 1);
    let reply = municipality
        .record_employer_contact(as_coach(employer_contact(
            &uuid::Uuid::new_v4().to_string(),
            &oversized,
        )))
        .await;
    let status = reply.err().ok_or_else(|| anyhow::anyhow!("accepted"))?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    stack.stop().await;
    Ok(())
}

/// Sends already-encoded bytes and reads the answer as bytes: the only way to put invalid
/// UTF-8 on the wire, which prost's own types cannot hold.
#[derive(Clone, Default)]
struct RawBytesCodec(PhantomData<()>);

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buffer: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(buffer, &item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        let length = bytes::Buf::remaining(buffer);
        Ok(Some(bytes::Buf::copy_to_bytes(buffer, length).to_vec()))
    }
}

impl Codec for RawBytesCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// `message` encoded, with the first `#` byte replaced by 0xFF (never valid in UTF-8).
fn with_invalid_utf8(message: &impl Message) -> anyhow::Result<Vec<u8>> {
    let mut encoded = message.encode_to_vec();
    let position = encoded
        .iter()
        .position(|byte| *byte == b'#')
        .ok_or_else(|| anyhow::anyhow!("no # to patch"))?;
    encoded[position] = 0xFF;
    Ok(encoded)
}

async fn send_raw(
    address: std::net::SocketAddr,
    path: &'static str,
    request: tonic::Request<Vec<u8>>,
) -> anyhow::Result<tonic::Status> {
    let mut client = tonic::client::Grpc::new(testkit::channel(address).await?);
    client.ready().await?;
    let reply = client
        .unary(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            RawBytesCodec::default(),
        )
        .await;
    reply
        .err()
        .ok_or_else(|| anyhow::anyhow!("{path}: invalid UTF-8 was accepted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_invalid_argument_on_agency_and_ledger_services() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let body = with_invalid_utf8(&employer_contact(
        &uuid::Uuid::new_v4().to_string(),
        "Acme#Corp",
    ))?;
    let status = send_raw(
        stack.municipality_address,
        "/ips.v1.MunicipalityService/RecordEmployerContact",
        as_caller(body, "coach-17", Role::Coach, "hudiksvall-ips"),
    )
    .await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("UTF-8"), "{status:?}");

    let body = with_invalid_utf8(&v1::GetTimelineRequest {
        participant_id: "#".into(),
        ..Default::default()
    })?;
    let status = send_raw(
        stack.ledger_address,
        "/ips.v1.TimelineService/GetTimeline",
        as_auditor(body),
    )
    .await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    stack.stop().await;
    Ok(())
}
