//! Who may call what (issue 5): the matrix of every RPC of every service against every
//! organisation × role, and every way a caller fails to authenticate. And the unit boundary
//! (issue 9): every RPC whose request names a participant, found in the descriptors so a new
//! one cannot be forgotten, called with a well-formed request by another unit's coach, team
//! leader and social-services officer (`PERMISSION_DENIED`, `other_unit`) and by the
//! participant's own unit and FK (answered, or refused by the participant's situation).
//!
//! Each call carries an empty request, so an admitted call stops at input validation
//! (`INVALID_ARGUMENT`) or answers; a refused one is `PERMISSION_DENIED` before any handler
//! runs. The expected matrix below is the product rule stated as data, independently of the
//! access table in `rpc::access`.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::{Agency, Role};
use prost::Message;
use testkit::Stack;
use tonic::Code;

/// An empty message: decodes as the default of any request type, and any response decodes
/// into it (unknown fields are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

const ROLES: [Role; 5] = [
    Role::Coach,
    Role::TeamLeader,
    Role::CaseOfficer,
    Role::Auditor,
    Role::System,
];

/// The product rule, as data: which roles of which organisations may call each RPC.
fn expected_admitted(service: &str, method: &str, agency: Agency, role: Role) -> bool {
    use Role::*;
    // Coaches and team leaders exist only in the municipality's IPS unit.
    if matches!(role, Coach | TeamLeader) && agency != Agency::Municipality {
        return false;
    }
    let own_agency_only = |service_agency: Agency| agency == service_agency;
    match service {
        "ips.v1.MunicipalityService" => {
            own_agency_only(Agency::Municipality)
                && match method {
                    "ReferParticipant" | "GrantConsent" | "WithdrawConsent" | "CorrectEvent" => {
                        matches!(role, Coach | TeamLeader | CaseOfficer)
                    }
                    "RecordSocialAssistance" | "AcceptActivityInPlanning" => role == CaseOfficer,
                    _ => matches!(role, Coach | TeamLeader),
                }
        }
        "ips.v1.ForsakringskassanService" => {
            own_agency_only(Agency::Forsakringskassan) && role == CaseOfficer
        }
        "ips.v1.ArbetsformedlingenService" => {
            own_agency_only(Agency::Arbetsformedlingen) && role == CaseOfficer
        }
        "ips.v1.PsychiatryService" => own_agency_only(Agency::Psychiatry) && role == CaseOfficer,
        "ips.v1.TimelineService" => match method {
            "GetTimeline" => matches!(role, Coach | TeamLeader | CaseOfficer | Auditor),
            "GetEventStatus" => matches!(role, Coach | TeamLeader | CaseOfficer | System),
            "VerifyChain" => matches!(role, TeamLeader | Auditor),
            _ => false,
        },
        "ips.v1.CaseloadService" => matches!(role, Coach | TeamLeader),
        "ips.v1.GreenLightService" => match method {
            "PendingApprovals" => role == CaseOfficer,
            "WatchGreenLight" => matches!(role, Coach | TeamLeader),
            "GateLeadTimes" => matches!(role, TeamLeader | Auditor),
            _ => false,
        },
        "ips.v1.AuditService" => role == Auditor,
        _ => false,
    }
}

/// Every (service, method, server-streaming) in the compiled protos.
fn every_rpc() -> anyhow::Result<Vec<(String, String, bool)>> {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)?;
    let mut rpcs = Vec::new();
    for file in set.file {
        let package = file.package.clone().unwrap_or_default();
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    format!("{package}.{}", service.name()),
                    method.name().to_owned(),
                    method.server_streaming(),
                ));
            }
        }
    }
    Ok(rpcs)
}

/// Calls `service/method` with an empty request and `token`, returning the status code.
async fn call(
    channel: tonic::transport::Channel,
    service: &str,
    method: &str,
    streaming: bool,
    token: Option<&str>,
) -> anyhow::Result<(Code, String)> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let mut request = tonic::Request::new(Empty {});
    if let Some(token) = token {
        rpc::identity::attach_token(request.metadata_mut(), token);
    }
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{service}/{method}").parse()?;
    let codec = tonic_prost::ProstCodec::<Empty, Empty>::default();
    let outcome = if streaming {
        match grpc.server_streaming(request, path, codec).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
                    Ok(Err(status)) => Err(status),
                    _ => Ok(()),
                }
            }
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    };
    Ok(match outcome {
        Ok(()) => (Code::Ok, String::new()),
        Err(status) => (
            status.code(),
            status
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ),
    })
}

fn address_of(stack: &Stack, service: &str) -> std::net::SocketAddr {
    match service {
        "ips.v1.MunicipalityService" => stack.municipality_address,
        "ips.v1.ForsakringskassanService" => stack.forsakringskassan_address,
        "ips.v1.ArbetsformedlingenService" => stack.arbetsformedlingen_address,
        "ips.v1.PsychiatryService" => stack.psychiatry_address,
        _ => stack.ledger_address,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_admits_exactly_its_roles_and_refuses_the_rest_with_permission_denied(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let rpcs = every_rpc()?;
    assert!(rpcs.len() > 60, "expected every RPC, found {}", rpcs.len());
    let mut channels = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut admitted_by_rpc: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (service, method, streaming) in &rpcs {
        for agency in Agency::ALL {
            let address = address_of(&stack, service);
            if let std::collections::btree_map::Entry::Vacant(entry) =
                channels.entry((address, agency))
            {
                entry.insert(testkit::channel_as(address, agency).await?);
            }
            let channel = channels[&(address, agency)].clone();
            for role in ROLES {
                let token = testkit::token(agency, "person-1", role, "unit-1");
                let (code, rule) =
                    call(channel.clone(), service, method, *streaming, Some(&token)).await?;
                let admitted = !matches!(code, Code::PermissionDenied | Code::Unauthenticated);
                if admitted {
                    admitted_by_rpc
                        .entry(format!("{service}/{method}"))
                        .or_default()
                        .push(format!("{}:{}", agency.token(), role.token()));
                }
                if code == Code::PermissionDenied && rule.is_empty() {
                    mismatches.push(format!(
                        "{service}/{method} as {agency}:{}: PERMISSION_DENIED without a rule",
                        role.token()
                    ));
                }
                if admitted != expected_admitted(service, method, agency, role) {
                    mismatches.push(format!(
                        "{service}/{method} as {}:{}: got {code:?} ({rule}), expected {}",
                        agency.token(),
                        role.token(),
                        if admitted {
                            "PERMISSION_DENIED"
                        } else {
                            "admitted"
                        }
                    ));
                }
            }
        }
    }
    for (rpc, callers) in &admitted_by_rpc {
        println!("{rpc}: {}", callers.join(" "));
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_cannot_prove_who_they_are_is_unauthenticated_naming_the_rule(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let now = chrono::Utc::now().timestamp();
    let pki = testkit::test_pki();
    // A signer over `agency`'s signing key (owned, so a test can rename its key id).
    let signer_of = |agency: Agency| {
        rpc::identity::TokenSigner::from_pkcs8(
            agency,
            &pki.material.organisations[&agency].token_signing_key_pkcs8,
        )
        .map_err(|error| anyhow::anyhow!(error))
    };
    let claims = |signer: &rpc::identity::TokenSigner,
                  organisation: &str,
                  role: &str,
                  issued_at_s: i64,
                  expires_at_s: i64| {
        let mut claims = signer.claims(
            "coach-17",
            Role::Coach,
            "hudiksvall-ips",
            issued_at_s,
            expires_at_s - issued_at_s,
        );
        organisation.clone_into(&mut claims.organisation);
        role.clone_into(&mut claims.role);
        claims
    };
    let base64url = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let municipality = testkit::signer(Agency::Municipality);
    let fk = testkit::signer(Agency::Forsakringskassan);
    let coach = claims(municipality, "municipality", "coach", now, now + 600);
    let genuine = municipality.sign(&coach)?;
    let (header_part, rest) = genuine.split_once('.').expect("a JWT");
    let (_, signature_part) = rest.split_once('.').expect("a JWT");
    let mut promoted = coach.clone();
    promoted.role = "auditor".into();
    let unsigned_header = serde_json::json!({"alg": "none", "kid": municipality.key_id()});
    let mut hs256_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256_header.kid = Some(municipality.key_id().to_owned());
    let mut other_issuer = coach.clone();
    other_issuer.issuer = "https://idp.example.invalid".into();
    let mut other_audience = coach.clone();
    other_audience.audience = rpc::identity::TokenAudience::One("another-federation".into());
    let cases: Vec<(&str, Option<String>, Agency, &str)> = vec![
        ("no token", None, Agency::Municipality, "token_missing"),
        (
            "not a token",
            Some("abc".into()),
            Agency::Municipality,
            "token_malformed",
        ),
        (
            "municipality claims signed with FK's key under the municipality's key id",
            Some(
                signer_of(Agency::Forsakringskassan)?
                    .with_key_id(municipality.key_id())
                    .sign(&coach)?,
            ),
            Agency::Municipality,
            "token_signature_invalid",
        ),
        (
            "claims altered after signing",
            Some(format!(
                "{header_part}.{}.{signature_part}",
                base64url(&serde_json::to_vec(&promoted)?)
            )),
            Agency::Municipality,
            "token_signature_invalid",
        ),
        (
            "claims that are not JSON, under a signature that is not the key's",
            Some(format!(
                "{header_part}.{}.{signature_part}",
                base64url(b"not json")
            )),
            Agency::Municipality,
            "token_signature_invalid",
        ),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                base64url(unsigned_header.to_string().as_bytes()),
                base64url(&serde_json::to_vec(&coach)?)
            )),
            Agency::Municipality,
            "token_algorithm_refused",
        ),
        (
            "HS256 keyed with the municipality's public key",
            Some(jsonwebtoken::encode(
                &hs256_header,
                &coach,
                &jsonwebtoken::EncodingKey::from_secret(
                    &pki.material.organisations[&Agency::Municipality].token_verifying_key,
                ),
            )?),
            Agency::Municipality,
            "token_algorithm_refused",
        ),
        (
            "a key id no organisation publishes",
            Some(
                signer_of(Agency::Municipality)?
                    .with_key_id("municipality-retired-2024")
                    .sign(&coach)?,
            ),
            Agency::Municipality,
            "token_key_unknown",
        ),
        (
            "another issuer",
            Some(municipality.sign(&other_issuer)?),
            Agency::Municipality,
            "token_issuer_invalid",
        ),
        (
            "another audience",
            Some(municipality.sign(&other_audience)?),
            Agency::Municipality,
            "token_audience_invalid",
        ),
        (
            "FK's key vouching for a municipality officer",
            Some(fk.sign(&claims(fk, "municipality", "coach", now, now + 600))?),
            Agency::Municipality,
            "token_organisation_not_the_signers",
        ),
        (
            "expired",
            Some(municipality.sign(&claims(
                municipality,
                "municipality",
                "coach",
                now - 7200,
                now - 3600,
            ))?),
            Agency::Municipality,
            "token_expired",
        ),
        (
            "not yet valid",
            Some(municipality.sign(&claims(
                municipality,
                "municipality",
                "coach",
                now + 3600,
                now + 4000,
            ))?),
            Agency::Municipality,
            "token_expired",
        ),
        (
            "valid for too long",
            Some(municipality.sign(&claims(
                municipality,
                "municipality",
                "coach",
                now,
                now + 13 * 3600,
            ))?),
            Agency::Municipality,
            "token_lifetime_too_long",
        ),
        (
            "an FK token over the municipality's certificate",
            Some(testkit::token(
                Agency::Forsakringskassan,
                "fk-officer-4",
                Role::CaseOfficer,
                "fk-lfc",
            )),
            Agency::Municipality,
            "token_organisation_mismatch",
        ),
        (
            "an unknown organisation",
            Some(municipality.sign(&claims(municipality, "region-x", "coach", now, now + 600))?),
            Agency::Municipality,
            "token_organisation_unknown",
        ),
        (
            "an unknown role",
            Some(municipality.sign(&claims(
                municipality,
                "municipality",
                "mayor",
                now,
                now + 600,
            ))?),
            Agency::Municipality,
            "token_claim_invalid",
        ),
    ];
    let refusals = cases.len();
    for (name, token, certificate, rule) in cases {
        let channel = testkit::channel_as(stack.ledger_address, certificate).await?;
        let got = call(
            channel,
            "ips.v1.TimelineService",
            "GetTimeline",
            false,
            token.as_deref(),
        )
        .await?;
        assert_eq!(got, (Code::Unauthenticated, rule.to_owned()), "{name}");
    }
    // Each refusal is counted for the operator.
    let metrics = tests::ledger_metrics(&stack).await?;
    assert!(
        metrics.contains(&format!(
            "\nips_calls_refused_total{{code=\"unauthenticated\"}} {refusals}\n"
        )),
        "{metrics}"
    );

    // Without a client certificate the TLS handshake itself fails: no call reaches a service.
    let no_certificate = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            &pki.material.ca_certificate_pem,
        ))
        .domain_name("localhost");
    let connected =
        tonic::transport::Channel::from_shared(format!("https://{}", stack.ledger_address))?
            .tls_config(no_certificate)?
            .connect()
            .await;
    if let Ok(channel) = connected {
        let token = testkit::token(
            Agency::Municipality,
            "coach-17",
            Role::Coach,
            "hudiksvall-ips",
        );
        let mut grpc = tonic::client::Grpc::new(channel);
        let ready = grpc.ready().await;
        let outcome = match ready {
            Ok(()) => {
                let mut request = tonic::Request::new(Empty {});
                rpc::identity::attach_token(request.metadata_mut(), &token);
                let path = "/ips.v1.TimelineService/GetTimeline".parse()?;
                grpc.unary(
                    request,
                    path,
                    tonic_prost::ProstCodec::<Empty, Empty>::default(),
                )
                .await
                .map(|_| ())
                .map_err(|status| status.code())
            }
            Err(_) => Err(Code::Unavailable),
        };
        assert!(
            matches!(outcome, Err(code) if code != Code::InvalidArgument && code != Code::Ok),
            "a call without a client certificate must fail, got {outcome:?}"
        );
    }
    // Plain text is not served at all.
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", stack.ledger_address))?
        .connect()
        .await;
    if let Ok(channel) = plain {
        let got = call(
            channel,
            "ips.v1.TimelineService",
            "GetTimeline",
            false,
            None,
        )
        .await;
        assert!(
            !matches!(got, Ok((Code::InvalidArgument | Code::Ok, _))),
            "plain text must not be served: {got:?}"
        );
    }
    stack.stop().await;
    Ok(())
}

// ---- Unit boundaries (issue 9): every RPC that takes a participant id, walked from the
// descriptors, against a participant of another unit ----

/// A request encoded by hand from its descriptor (any response decodes into [`Empty`]).
#[derive(Clone, Debug, Default, PartialEq)]
struct RawRequest(Vec<u8>);

impl prost::Message for RawRequest {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// What a filled-in request says: the participant, who asks, and an earlier event to correct.
struct Filling<'a> {
    participant_id: &'a str,
    person: &'a str,
    unit: &'a str,
    supersedes_event_id: &'a str,
}

/// A plausible value for every field of `message_type`, so that a write passes the services'
/// input checks and reaches the ledger's rules; `participant_id` is the participant under test.
fn fill(
    messages: &BTreeMap<String, prost_types::DescriptorProto>,
    message_type: &str,
    filling: &Filling<'_>,
) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    use prost_types::field_descriptor_proto::Type;
    let mut buf = Vec::new();
    let Some(message) = messages.get(message_type) else {
        return buf;
    };
    let today = domain::business_date(chrono::Utc::now());
    for field in &message.field {
        let tag = field.number() as u32;
        let name = field.name();
        match field.r#type() {
            Type::Message => {
                if name == "context" {
                    continue;
                }
                let nested = fill(messages, field.type_name(), filling);
                encode_key(tag, WireType::LengthDelimited, &mut buf);
                encode_varint(nested.len() as u64, &mut buf);
                buf.extend_from_slice(&nested);
            }
            // No subsidy; a recipient other than the discloser.
            Type::Enum => {
                let value = match name {
                    "subsidy" => 0,
                    "recipient" => 2,
                    _ => 1,
                };
                prost::encoding::int32::encode(tag, &value, &mut buf);
            }
            Type::Uint32 | Type::Int32 | Type::Uint64 | Type::Int64 => {
                let value: u64 = match name {
                    // Read-your-writes waits for this sequence: do not wait.
                    "min_sequence" => 0,
                    _ if name.contains("percent") => 100,
                    _ => 20,
                };
                encode_key(tag, WireType::Varint, &mut buf);
                encode_varint(value, &mut buf);
            }
            Type::String => {
                let value = match name {
                    "participant_id" => filling.participant_id.to_owned(),
                    "unit" => filling.unit.to_owned(),
                    "referrer_unit" => "hudiksvall-vuxenpsykiatri".to_owned(),
                    "supersedes_event_id" => filling.supersedes_event_id.to_owned(),
                    // A watch by participant only (the watch by coach is its own case).
                    "coach_person_id" if message.name() == "WatchGreenLightRequest" => {
                        String::new()
                    }
                    // Optional filters of a read.
                    "page_token" => String::new(),
                    _ if name.starts_with("occurred_") || name.starts_with("recorded_") => {
                        String::new()
                    }
                    "activity_id" => uuid::Uuid::new_v4().to_string(),
                    "corrected_body_json" => serde_json::json!({
                        "type": "FollowUpRecorded",
                        "status": "searching",
                        "obstacles": "corrected",
                        "helping_factors": "corrected",
                    })
                    .to_string(),
                    "to" | "planned_end" | "valid_to" => {
                        (today + chrono::Duration::days(30)).to_string()
                    }
                    _ if name.contains("person") => filling.person.to_owned(),
                    _ if name.ends_with("_id") => String::new(),
                    _ if name.contains("date")
                        || name.ends_with("_on")
                        || name.ends_with("_start")
                        || name.ends_with("_from")
                        || name == "from" =>
                    {
                        today.to_string()
                    }
                    _ => "text".to_owned(),
                };
                prost::encoding::string::encode(tag, &value, &mut buf);
            }
            _ => {}
        }
    }
    buf
}

/// Calls `service/method` with a raw request as `token`: the status code and `ips-rule`.
async fn call_raw(
    channel: tonic::transport::Channel,
    service: &str,
    method: &str,
    streaming: bool,
    body: Vec<u8>,
    token: &str,
) -> anyhow::Result<(Code, String)> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let mut request = tonic::Request::new(RawRequest(body));
    rpc::identity::attach_token(request.metadata_mut(), token);
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{service}/{method}").parse()?;
    let codec = tonic_prost::ProstCodec::<RawRequest, Empty>::default();
    let outcome = if streaming {
        match grpc.server_streaming(request, path, codec).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
                    Ok(Err(status)) => Err(status),
                    _ => Ok(()),
                }
            }
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    };
    Ok(match outcome {
        Ok(()) => (Code::Ok, String::new()),
        Err(status) => (
            status.code(),
            status
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
                + if status.code() == Code::InvalidArgument {
                    status.message()
                } else {
                    ""
                },
        ),
    })
}

/// Every (service, method, streaming, input type) whose request names a participant, directly
/// or through its `ParticipantWrite`, and every message by full name.
#[allow(clippy::type_complexity)]
fn rpcs_taking_a_participant() -> anyhow::Result<(
    Vec<(String, String, bool, String)>,
    BTreeMap<String, prost_types::DescriptorProto>,
)> {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)?;
    let mut messages = BTreeMap::new();
    for file in &set.file {
        for message in &file.message_type {
            messages.insert(
                format!(".{}.{}", file.package(), message.name()),
                message.clone(),
            );
        }
    }
    let takes_participant = |type_name: &str| {
        messages.get(type_name).is_some_and(|message| {
            message.field.iter().any(|field| {
                field.name() == "participant_id" || field.type_name() == ".ips.v1.ParticipantWrite"
            })
        })
    };
    let mut rpcs = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                if takes_participant(method.input_type()) {
                    rpcs.push((
                        format!("{}.{}", file.package(), service.name()),
                        method.name().to_owned(),
                        method.server_streaming(),
                        method.input_type().to_owned(),
                    ));
                }
            }
        }
    }
    Ok((rpcs, messages))
}

/// One caller of the unit-boundary matrix.
#[derive(Clone, Copy, Debug)]
struct UnitCaller {
    agency: Agency,
    person: &'static str,
    role: Role,
    unit: &'static str,
    /// Within the participant's units (or in none: other agencies).
    within: bool,
}

/// Refers and enrols a participant at the Hudiksvall IPS unit, lets Hudiksvall's IFO record
/// social assistance (naming the social-services unit) and the coach a follow-up (free text).
/// Returns the participant and the follow-up's event id.
async fn hudiksvall_participant(stack: &Stack) -> anyhow::Result<(String, String)> {
    use proto::v1;
    let (participant_id, _) = stack.enrolled_participant("coach-17", None).await?;
    let mut municipality = stack.municipality().await?;
    let write = || {
        Some(v1::ParticipantWrite {
            context: None,
            participant_id: participant_id.clone(),
        })
    };
    municipality
        .record_social_assistance(testkit::as_caller(
            v1::RecordSocialAssistanceRequest {
                write: write(),
                status: v1::SocialAssistanceStatus::Granted as i32,
            },
            "ifo-officer-3",
            Role::CaseOfficer,
            "hudiksvall-ifo",
        ))
        .await?;
    let follow_up = municipality
        .record_follow_up(testkit::as_coach(v1::RecordFollowUpRequest {
            write: write(),
            status: v1::FollowUpStatus::Searching as i32,
            obstacles: "sleeps badly".into(),
            helping_factors: "mornings".into(),
        }))
        .await?
        .into_inner()
        .event_id;
    Ok((participant_id, follow_up))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_taking_a_participant_id_refuses_another_units_officers_with_other_unit(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (rpcs, messages) = rpcs_taking_a_participant()?;
    let names: Vec<String> = rpcs
        .iter()
        .map(|(service, method, ..)| format!("{service}/{method}"))
        .collect();
    for expected in [
        "ips.v1.TimelineService/GetTimeline",
        "ips.v1.TimelineService/VerifyChain",
        "ips.v1.CaseloadService/GetPlacement",
        "ips.v1.GreenLightService/WatchGreenLight",
        "ips.v1.MunicipalityService/RecordFollowUp",
        "ips.v1.MunicipalityService/PauseParticipant",
        "ips.v1.MunicipalityService/AcceptActivityInPlanning",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} not walked: {names:?}"
        );
    }
    let outsiders = [
        UnitCaller {
            agency: Agency::Municipality,
            person: "coach-3",
            role: Role::Coach,
            unit: "bollnas-ips",
            within: false,
        },
        UnitCaller {
            agency: Agency::Municipality,
            person: "team-leader-2",
            role: Role::TeamLeader,
            unit: "bollnas-ips",
            within: false,
        },
        UnitCaller {
            agency: Agency::Municipality,
            person: "ifo-officer-8",
            role: Role::CaseOfficer,
            unit: "bollnas-ifo",
            within: false,
        },
    ];
    let insiders = [
        UnitCaller {
            agency: Agency::Municipality,
            person: "ifo-officer-3",
            role: Role::CaseOfficer,
            unit: "hudiksvall-ifo",
            within: true,
        },
        UnitCaller {
            agency: Agency::Forsakringskassan,
            person: "fk-officer-4",
            role: Role::CaseOfficer,
            unit: "fk-lfc-gavleborg",
            within: true,
        },
        UnitCaller {
            agency: Agency::Municipality,
            person: "team-leader-1",
            role: Role::TeamLeader,
            unit: "hudiksvall-ips",
            within: true,
        },
        UnitCaller {
            agency: Agency::Municipality,
            person: "coach-17",
            role: Role::Coach,
            unit: "hudiksvall-ips",
            within: true,
        },
    ];
    let mut mismatches = Vec::new();
    let mut refused_other_unit = 0;
    let (shared_participant, shared_follow_up) = hudiksvall_participant(&stack).await?;
    for caller in outsiders.iter().chain(insiders.iter()) {
        // Insiders' writes change the participant (pause, discharge, protect): each insider
        // gets one of their own, so no caller's outcome depends on another's.
        let (participant_id, follow_up) = if caller.within {
            hudiksvall_participant(&stack).await?
        } else {
            (shared_participant.clone(), shared_follow_up.clone())
        };
        let token = testkit::token(caller.agency, caller.person, caller.role, caller.unit);
        for (service, method, streaming, input_type) in &rpcs {
            if !expected_admitted(service, method, caller.agency, caller.role) {
                continue;
            }
            let channel = testkit::channel_as(address_of(&stack, service), caller.agency).await?;
            let body = fill(
                &messages,
                input_type,
                &Filling {
                    participant_id: &participant_id,
                    person: caller.person,
                    unit: caller.unit,
                    supersedes_event_id: &follow_up,
                },
            );
            let (code, rule) = call_raw(channel, service, method, *streaming, body, &token).await?;
            // A filled-in request is well-formed, so an insider's call reaches the rules: it
            // is answered, or refused by the participant's situation, never by the caller.
            let as_expected = if caller.within {
                matches!(code, Code::Ok | Code::FailedPrecondition) && rule != "other_unit"
            } else {
                code == Code::PermissionDenied && rule == "other_unit"
            };
            if !caller.within && as_expected {
                refused_other_unit += 1;
            }
            if !as_expected {
                mismatches.push(format!(
                    "{service}/{method} as {}:{} of {}: got {code:?} ({rule}), expected {}",
                    caller.agency.token(),
                    caller.person,
                    caller.unit,
                    if caller.within {
                        "OK or FAILED_PRECONDITION"
                    } else {
                        "PERMISSION_DENIED (other_unit)"
                    }
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        refused_other_unit > 40,
        "only {refused_other_unit} refusals"
    );

    // GetEventStatus takes an event id, not a participant: another unit's event is as unknown
    // to an outsider as one never recorded (no participant id, sequence or hash).
    let mut timeline = stack.timeline().await?;
    for outsider in &outsiders {
        let status = timeline
            .get_event_status(testkit::as_caller(
                proto::v1::GetEventStatusRequest {
                    event_id: shared_follow_up.clone(),
                },
                outsider.person,
                outsider.role,
                outsider.unit,
            ))
            .await?
            .into_inner();
        assert_eq!(
            (status.status(), status.participant_id.as_str()),
            (proto::v1::EventStatus::Unknown, ""),
            "GetEventStatus as {}",
            outsider.person
        );
    }
    // Waiting for a sequence is no way round the boundary: an outsider asking for one far
    // ahead is refused at once, not told after the wait how far the history has got (which,
    // polled, would announce every new entry of a participant they may not open).
    for outsider in &outsiders {
        let asked = std::time::Instant::now();
        let refused = timeline
            .get_timeline(testkit::as_caller(
                proto::v1::GetTimelineRequest {
                    participant_id: shared_participant.clone(),
                    min_sequence: 1_000_000,
                    ..Default::default()
                },
                outsider.person,
                outsider.role,
                outsider.unit,
            ))
            .await
            .expect_err("an outsider's timeline read is refused");
        let rule = refused
            .metadata()
            .get("ips-rule")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            (refused.code(), rule.as_str()),
            (Code::PermissionDenied, "other_unit"),
            "GetTimeline with min_sequence as {}: {refused:?}",
            outsider.person
        );
        assert!(
            asked.elapsed()
                < Duration::from_millis(
                    ledger::config::TimelineConfig::default().read_your_writes_wait_max_ms
                ),
            "refused before waiting for the sequence"
        );
    }
    let own = timeline
        .get_event_status(testkit::as_team_leader(proto::v1::GetEventStatusRequest {
            event_id: shared_follow_up.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(own.status(), proto::v1::EventStatus::Accepted);

    // A watch by coach: another unit's officer asking for this unit's coach is refused once the
    // coach has a light to show (the own coach's first update proves it is on the board).
    let today = domain::business_date(chrono::Utc::now());
    stack
        .municipality()
        .await?
        .propose_activity(testkit::as_coach(proto::v1::ProposeActivityRequest {
            write: Some(proto::v1::ParticipantWrite {
                context: None,
                participant_id: shared_participant.clone(),
            }),
            kind: proto::v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: (today + chrono::Duration::days(7)).to_string(),
            ..Default::default()
        }))
        .await?;
    let by_coach = || proto::v1::WatchGreenLightRequest {
        coach_person_id: "coach-17".into(),
        ..Default::default()
    };
    let mut own_watch = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(by_coach()))
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), own_watch.message()).await??;
    assert!(first.is_some(), "the own coach's watch shows the light");
    drop(own_watch);
    for outsider in outsiders
        .iter()
        .filter(|caller| caller.role != Role::CaseOfficer)
    {
        let refused = match stack
            .green_light()
            .await?
            .watch_green_light(testkit::as_caller(
                by_coach(),
                outsider.person,
                outsider.role,
                outsider.unit,
            ))
            .await
        {
            Err(status) => Some(status),
            Ok(response) => {
                let mut stream = response.into_inner();
                tokio::time::timeout(Duration::from_secs(10), stream.message())
                    .await?
                    .err()
            }
        };
        let got = refused.as_ref().map(|status| {
            (
                status.code(),
                status
                    .metadata()
                    .get("ips-rule")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            )
        });
        assert_eq!(
            got,
            Some((Code::PermissionDenied, "other_unit".to_owned())),
            "WatchGreenLight by coach as {}",
            outsider.person
        );
    }
    stack.stop().await;
    Ok(())
}
