//! Answers agency services' status look-ups over NATS request/reply, from the event store.
//!
//! Agency services never touch the database; when a verdict did not arrive in time, or JetStream
//! said "duplicate" (so no new verdict will come), they ask here, each on its own subject
//! (`<prefix>.ledger.status.<agency>`), and learn only about their own events. The queue group lets several
//! ledger instances share the load.
//!
//! The answer goes only to a reply subject inside the asking agency's own inbox
//! (`_INBOX.<agency>.…`). The requester names the reply subject, and the ledger's NATS user may
//! publish on every agency's verdict subjects: answering anywhere would let an agency put a
//! verdict of its own event on another agency's verdict subject, where that agency's officer,
//! waiting on another event, would take it.

use bus::{verdicts, Subjects, Verdict};
use domain::Agency;
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::verdict::verdict_of_event;

/// Serves look-ups until shutdown.
pub async fn run(
    client: async_nats::Client,
    subjects: Subjects,
    pool: PgPool,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut requests = match client
        .queue_subscribe(subjects.status_requests_of_every_agency(), "ledger".into())
        .await
    {
        Ok(requests) => requests,
        Err(error) => {
            tracing::error!(%error, "status responder could not subscribe");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            message = requests.next() => message,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        let Some(message) = message else { break };
        let (reply, event_id, asker) = (
            message.reply.clone(),
            verdicts::decode_status_request(&message.payload),
            subjects.parse_status_request(&message.subject),
        );
        let (Some(reply), Some(event_id), Some(asker)) = (reply.clone(), event_id, asker) else {
            // Nobody can be answered (or nobody asked properly): said, not silently dropped.
            tracing::warn!(
                subject = %message.subject,
                has_reply_subject = reply.is_some(),
                event_id_readable = event_id.is_some(),
                asking_agency_readable = asker.is_some(),
                "status request ignored: not a request this ledger can answer"
            );
            continue;
        };
        if !inside_inbox_of(&subjects, asker, &reply) {
            // Refused before the event store is read, so such requests cost no query.
            tracing::warn!(
                asking_agency = %asker,
                refused_reply_subject = %reply,
                %event_id,
                "status request refused: its reply subject is outside the asking agency's inbox"
            );
            continue;
        }
        let verdict = match store::events::find_by_event_id(&pool, event_id).await {
            // Another agency's event is answered exactly as one never recorded: the status
            // subject is the asker's own (NATS permissions), and the answer is no oracle.
            Ok(Some(recorded)) if recorded.event.envelope.agency != asker => {
                Verdict::unknown(event_id)
            }
            Ok(Some(recorded)) => {
                let participant_id = recorded.participant_id.0;
                match store::participants::load_recorded(&pool, participant_id).await {
                    Ok(participant) => {
                        verdict_of_event(&recorded.event, &participant, clock.today())
                    }
                    Err(error) => {
                        tracing::warn!(%error, "status look-up failed");
                        continue;
                    }
                }
            }
            Ok(None) => Verdict::unknown(event_id),
            Err(error) => {
                tracing::warn!(%error, "status look-up failed");
                continue;
            }
        };
        match verdicts::encode(&verdict) {
            Ok(payload) => {
                if let Err(error) = client.publish(reply, payload).await {
                    tracing::warn!(%error, %event_id, "status answer not sent; the service answers PENDING");
                }
            }
            Err(error) => tracing::error!(%error, %event_id, "a verdict did not encode"),
        }
    }
}

/// Whether `reply` lies inside `asker`'s own inbox: its prefix followed by a '.', so neither
/// another agency's inbox nor a longer token that merely starts alike (`_INBOX.fkx`) passes.
fn inside_inbox_of(subjects: &Subjects, asker: Agency, reply: &str) -> bool {
    reply
        .strip_prefix(subjects.inbox_prefix(asker).as_str())
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reply_subject_inside_the_askers_own_inbox_is_answered() {
        let subjects = Subjects::new("ips.v1");
        let fk = Agency::Forsakringskassan;
        assert!(inside_inbox_of(&subjects, fk, "_INBOX.fk.abc123.1"));
        for refused in [
            "ips.v1.verdict.municipality.0193a1b2-0000-4000-8000-000000000007",
            "ips.v1.verdict.fk.0193a1b2-0000-4000-8000-000000000007",
            "_INBOX.municipality.abc123.1",
            "_INBOX.fkx.abc123",
            "_INBOX.fk.",
            "_INBOX.fk",
            "_INBOX.abc123",
            "",
        ] {
            assert!(!inside_inbox_of(&subjects, fk, refused), "{refused}");
        }
    }
}
