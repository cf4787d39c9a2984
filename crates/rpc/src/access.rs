//! Who may call which RPC: one table, checked before any handler runs.
//!
//! [`Authenticated`] wraps each gRPC service. For every call it authenticates the caller
//! ([`crate::identity::Authority`]: client certificate plus officer token), then authorises the
//! method against [`allowed_roles`], then hands the verified [`Caller`] to the handler through
//! the request's extensions. Refusals are `UNAUTHENTICATED` (who are you?) or
//! `PERMISSION_DENIED` (you may not), each naming the broken rule. Health and reflection need
//! the client certificate (TLS enforces it) but no token: they carry no participant data.
//!
//! Consent, protected identity and the access log are decided later, per participant, by the
//! read paths; this table only decides whether the RPC may run at all.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use domain::{Agency, Role};
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::identity::{Authority, Caller, IdentityError};

/// Why an authenticated caller may not run a method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// The role may not run this method.
    #[error("role_not_allowed: role {role} may not call {method}; allowed: {allowed}")]
    RoleNotAllowed {
        /// The caller's role.
        role: &'static str,
        /// The method.
        method: String,
        /// The roles that may.
        allowed: String,
    },
    /// An agency service takes writes only from its own officers.
    #[error("other_agency: {service} accepts calls only from its own officers; the caller is from {caller}")]
    OtherAgency {
        /// The service's agency.
        service: &'static str,
        /// The caller's agency.
        caller: &'static str,
    },
    /// Coaches and team leaders exist only in the municipality's IPS unit.
    #[error("role_outside_organisation: role {role} belongs to the municipality's IPS unit, not to {agency}")]
    RoleOutsideOrganisation {
        /// The role.
        role: &'static str,
        /// The caller's agency.
        agency: &'static str,
    },
    /// The method is not in the table: refused by default.
    #[error("method_not_listed: {0} is not in the access table")]
    MethodNotListed(String),
}

impl AccessDenied {
    /// The rule's stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::RoleNotAllowed { .. } => "role_not_allowed",
            Self::OtherAgency { .. } => "other_agency",
            Self::RoleOutsideOrganisation { .. } => "role_outside_organisation",
            Self::MethodNotListed(_) => "method_not_listed",
        }
    }
}

const IPS: &[Role] = &[Role::Coach, Role::TeamLeader];
const IPS_AND_SOCIAL_SERVICES: &[Role] = &[Role::Coach, Role::TeamLeader, Role::CaseOfficer];
const CASE_OFFICER: &[Role] = &[Role::CaseOfficer];
const READERS: &[Role] = &[
    Role::Coach,
    Role::TeamLeader,
    Role::CaseOfficer,
    Role::Auditor,
];
const WRITERS_AND_SYSTEM: &[Role] = &[
    Role::Coach,
    Role::TeamLeader,
    Role::CaseOfficer,
    Role::System,
];
const AUDIT: &[Role] = &[Role::TeamLeader, Role::Auditor];
const AUDITOR: &[Role] = &[Role::Auditor];

/// The roles that may call `service`/`method` (gRPC path parts), or `None` when unlisted.
pub fn allowed_roles(service: &str, method: &str) -> Option<&'static [Role]> {
    let roles = match (service, method) {
        ("ips.v1.MunicipalityService", method) => match method {
            "ReferParticipant" | "GrantConsent" | "WithdrawConsent" | "CorrectEvent" => {
                IPS_AND_SOCIAL_SERVICES
            }
            "RecordSocialAssistance" | "AcceptActivityInPlanning" => CASE_OFFICER,
            "EnrollParticipant"
            | "DeclineReferral"
            | "AssignCoach"
            | "PauseParticipant"
            | "ResumeParticipant"
            | "DischargeParticipant"
            | "ReEnrollParticipant"
            | "RecordProfile"
            | "RecordBenefitsCounselling"
            | "RecordDisclosurePreference"
            | "RecordEmployerContact"
            | "ProposeActivity"
            | "StartActivity"
            | "EndActivity"
            | "StartJob"
            | "ChangeHours"
            | "EndJob"
            | "StartStudies"
            | "EndStudies"
            | "RecordFollowAlongContact"
            | "RecordFollowUp"
            | "RecordOutreachAttempt"
            | "RecordSipHeld"
            | "RecordSipEstablished"
            | "RecordBenefitSelfReport"
            | "ProtectIdentity" => IPS,
            _ => return None,
        },
        (
            "ips.v1.ForsakringskassanService"
            | "ips.v1.ArbetsformedlingenService"
            | "ips.v1.PsychiatryService",
            _,
        ) => CASE_OFFICER,
        ("ips.v1.TimelineService", "GetTimeline") => READERS,
        ("ips.v1.TimelineService", "GetEventStatus") => WRITERS_AND_SYSTEM,
        ("ips.v1.TimelineService", "VerifyChain") => AUDIT,
        ("ips.v1.CaseloadService", "GetCaseload" | "GetPlacement" | "GetUnitLoad") => IPS,
        ("ips.v1.GreenLightService", "PendingApprovals") => CASE_OFFICER,
        ("ips.v1.GreenLightService", "WatchGreenLight") => IPS,
        ("ips.v1.GreenLightService", "GateLeadTimes") => AUDIT,
        (
            "ips.v1.AuditService",
            "GetAccessLogExtract" | "ReplayParticipant" | "ReconstructRead",
        ) => AUDITOR,
        _ => return None,
    };
    Some(roles)
}

/// Whether `caller` may call `path` on a service that speaks for `service_agency` (`None` for
/// the ledger's shared read services).
pub fn authorise(
    path: &str,
    caller: &Caller,
    service_agency: Option<Agency>,
) -> Result<(), AccessDenied> {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let roles =
        allowed_roles(service, method).ok_or_else(|| AccessDenied::MethodNotListed(path.into()))?;
    if matches!(caller.actor.role, Role::Coach | Role::TeamLeader)
        && caller.agency != Agency::Municipality
    {
        return Err(AccessDenied::RoleOutsideOrganisation {
            role: caller.actor.role.token(),
            agency: caller.agency.token(),
        });
    }
    if let Some(service_agency) = service_agency {
        if caller.agency != service_agency {
            return Err(AccessDenied::OtherAgency {
                service: service_agency.token(),
                caller: caller.agency.token(),
            });
        }
    }
    if !roles.contains(&caller.actor.role) {
        return Err(AccessDenied::RoleNotAllowed {
            role: caller.actor.role.token(),
            method: format!("{service}/{method}"),
            allowed: roles
                .iter()
                .map(|role| role.token())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// Why the gatekeeper refused a call, before it becomes a status.
enum Refusal {
    Unauthenticated(IdentityError),
    Denied(AccessDenied),
}

/// The access checks shared by every wrapped service of one server.
#[derive(Debug)]
pub struct Gatekeeper {
    /// Verifies certificates and tokens; replaced whole when the organisations' key sets change
    /// on disk ([`Guard::reload_keys`]).
    authority: std::sync::RwLock<Arc<Authority>>,
    /// The agency a service speaks for, `None` for the ledger.
    pub service_agency: Option<Agency>,
    /// Calls refused, by gRPC code: `unauthenticated` (a burst means a misconfigured client or
    /// someone probing) and `permission_denied` (refused by the access table). This server's
    /// own counts, exported when its owner calls [`Gatekeeper::register_metrics`].
    pub refused_calls: RefusedCalls,
}

/// Refused calls by gRPC code (the `code` label of `ips_calls_refused_total`).
pub type RefusedCalls = prometheus_client::metrics::family::Family<
    [(&'static str, &'static str); 1],
    prometheus_client::metrics::counter::Counter,
>;

/// The `code` label of a call refused as `UNAUTHENTICATED`.
pub const REFUSED_UNAUTHENTICATED: &str = "unauthenticated";
/// The `code` label of a call refused as `PERMISSION_DENIED`.
pub const REFUSED_PERMISSION_DENIED: &str = "permission_denied";

impl Gatekeeper {
    /// Adds this server's refusal counts to its owner's registry as `ips_calls_refused_total`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "ips_calls_refused",
            "Calls refused before any handler ran, by gRPC code",
            self.refused_calls.clone(),
        );
    }

    /// Calls refused so far with the `code` label `code` ([`REFUSED_UNAUTHENTICATED`] or
    /// [`REFUSED_PERMISSION_DENIED`]).
    pub fn refused(&self, code: &'static str) -> u64 {
        self.refused_calls.get_or_create(&[("code", code)]).get()
    }

    /// The authority verifying calls now.
    pub fn authority(&self) -> Arc<Authority> {
        // Only ever replaced whole, so a panic elsewhere cannot leave it half-written.
        self.authority
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Authenticates and authorises one call.
    pub fn admit(&self, request: &http::Request<Body>) -> Result<Option<Caller>, tonic::Status> {
        self.check(request).map_err(|refusal| match refusal {
            Refusal::Unauthenticated(error) => {
                self.refused_calls
                    .get_or_create(&[("code", REFUSED_UNAUTHENTICATED)])
                    .inc();
                crate::errors::unauthenticated(&error)
            }
            Refusal::Denied(error) => {
                self.refused_calls
                    .get_or_create(&[("code", REFUSED_PERMISSION_DENIED)])
                    .inc();
                crate::errors::permission_denied(&error)
            }
        })
    }

    fn check(&self, request: &http::Request<Body>) -> Result<Option<Caller>, Refusal> {
        let path = request.uri().path();
        if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
            return Ok(None);
        }
        let certificate_organisation = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|certificates| certificates.first().cloned())
            .map(|first| crate::identity::certificate_organisation(first.as_ref()))
            .transpose()
            .map_err(Refusal::Unauthenticated)?;
        let authorization = request.headers().get(crate::identity::AUTHORIZATION_HEADER);
        let caller = self
            .authority()
            .authenticate_header(
                authorization,
                certificate_organisation,
                // Real time, never a service's injected clock: the issuer stamps tokens with
                // real time, and a test that moves business time keeps its credentials.
                crate::clock::Clock::now(&crate::clock::SystemClock).timestamp(),
            )
            .map_err(Refusal::Unauthenticated)?;
        authorise(path, &caller, self.service_agency).map_err(Refusal::Denied)?;
        Ok(Some(caller))
    }
}

/// The gatekeeper of one server, shared by its wrapped services.
#[derive(Clone, Debug)]
pub struct Guard(pub Arc<Gatekeeper>);

impl Guard {
    /// Loads the identity configuration for a service speaking for `service_agency`.
    pub fn from_config(
        identity: &crate::identity::IdentityConfig,
        service_agency: Option<Agency>,
    ) -> Result<Self, String> {
        let refused_calls = RefusedCalls::default();
        // Both series exist from the start, so a scrape shows a zero rather than nothing.
        for code in [REFUSED_UNAUTHENTICATED, REFUSED_PERMISSION_DENIED] {
            let _ = refused_calls.get_or_create(&[("code", code)]);
        }
        Ok(Self(Arc::new(Gatekeeper {
            authority: std::sync::RwLock::new(Arc::new(Authority::from_config(identity)?)),
            service_agency,
            refused_calls,
        })))
    }

    /// Reads the organisations' key sets again and, when they changed, verifies every later
    /// call under the new ones (nothing verified under the old keys is kept). Returns whether
    /// they changed; on an error the keys loaded before stay in force.
    pub fn reload_keys(&self, identity: &crate::identity::IdentityConfig) -> Result<bool, String> {
        let Some(reloaded) = self.0.authority().reloaded(identity)? else {
            return Ok(false);
        };
        *self
            .0
            .authority
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(reloaded);
        Ok(true)
    }

    /// Reloads the key sets every `identity.token_verifying_keys_reload_interval_ms` (0: never)
    /// until `shutdown`, so an organisation's key rotation needs no restart. A set that does not
    /// load (a file half-written mid-rotation, a bad key) is reported and tried again next time.
    pub fn keep_keys_current(
        &self,
        identity: crate::identity::IdentityConfig,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        if identity.token_verifying_keys_reload_interval_ms == 0 {
            return;
        }
        let interval =
            std::time::Duration::from_millis(identity.token_verifying_keys_reload_interval_ms);
        let guard = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                }
                match guard.reload_keys(&identity) {
                    Ok(true) => {
                        tracing::info!("officer token verifying keys changed on disk; reloaded")
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "officer token verifying keys do not load; the keys loaded before stay in force")
                    }
                }
            }
        });
    }

    /// Puts `service` behind the gatekeeper.
    pub fn wrap<S>(&self, service: S) -> Authenticated<S> {
        Authenticated::new(service, self.0.clone())
    }
}

/// A gRPC service behind the [`Gatekeeper`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    gatekeeper: Arc<Gatekeeper>,
}

impl<S> Authenticated<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, gatekeeper: Arc<Gatekeeper>) -> Self {
        Self { inner, gatekeeper }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        match self.gatekeeper.admit(&request) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                let response = self.inner.call(request);
                Box::pin(async move {
                    response
                        .await
                        .map(crate::errors::size_limit_as_resource_exhausted)
                })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
