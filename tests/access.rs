//! Who may call what (issue 5): the matrix of every RPC of every service against every
//! organisation × role, and every way a caller fails to authenticate.
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
    let claims = |organisation: &str, role: &str, issued_at_s: i64, expires_at_s: i64| {
        rpc::identity::TokenClaims {
            organisation: organisation.into(),
            person_id: "coach-17".into(),
            role: role.into(),
            unit: "hudiksvall-ips".into(),
            issued_at_s,
            expires_at_s,
        }
    };
    let municipality = testkit::signer(Agency::Municipality);
    let fk = testkit::signer(Agency::Forsakringskassan);
    let cases: Vec<(&str, Option<String>, Agency, &str)> = vec![
        ("no token", None, Agency::Municipality, "token_missing"),
        (
            "not a token",
            Some("abc".into()),
            Agency::Municipality,
            "token_malformed",
        ),
        (
            "municipality claims signed with FK's key",
            Some(fk.sign(&claims("municipality", "coach", now, now + 600))),
            Agency::Municipality,
            "token_signature_invalid",
        ),
        (
            "expired",
            Some(municipality.sign(&claims("municipality", "coach", now - 7200, now - 3600))),
            Agency::Municipality,
            "token_expired",
        ),
        (
            "not yet valid",
            Some(municipality.sign(&claims("municipality", "coach", now + 3600, now + 4000))),
            Agency::Municipality,
            "token_expired",
        ),
        (
            "valid for too long",
            Some(municipality.sign(&claims("municipality", "coach", now, now + 13 * 3600))),
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
            Some(municipality.sign(&claims("region-x", "coach", now, now + 600))),
            Agency::Municipality,
            "token_organisation_unknown",
        ),
        (
            "an unknown role",
            Some(municipality.sign(&claims("municipality", "mayor", now, now + 600))),
            Agency::Municipality,
            "token_claim_invalid",
        ),
    ];
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
        metrics.contains("\nips_calls_refused_total{code=\"unauthenticated\"} 9\n"),
        "{metrics}"
    );

    // Without a client certificate the TLS handshake itself fails: no call reaches a service.
    let pki = testkit::test_pki();
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
