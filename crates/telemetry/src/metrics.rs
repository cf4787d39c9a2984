//! Metrics: each running service owns one `prometheus-client` [`Registry`] and the handles it
//! counts with, and serves that registry, and nothing else, as OpenMetrics text.
//!
//! There is deliberately no process-wide registry (as the `metrics` facade or the `prometheus`
//! crate's default registry would give): the tests run whole stacks in one process, and an
//! operator may run two services in one, so a count kept in a global would be summed across
//! instances that have nothing to do with each other. A service builds its registry in its
//! `start`, hands the handles to the parts that count, and passes the registry to
//! [`serve_metrics`].
//!
//! The endpoint is hyper's HTTP/1 server (hyper is already here through tonic): `GET /metrics`
//! answers the scrape, anything else 404 or 405, one request per connection, with a bound on
//! the connections served at once and on the time a client may take to send its request.
//! [`parse_exposition`] reads a scrape back strictly, for tests and tools.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use tokio::sync::{watch, Semaphore};

/// The content type of an OpenMetrics text scrape.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The path the scrape is served on.
pub const METRICS_PATH: &str = "/metrics";

/// Bounds on the metrics endpoint.
#[derive(Clone, Debug)]
pub struct MetricsEndpointLimits {
    /// Connections served at once; a further one waits in the listen backlog.
    pub connections_max: usize,
    /// How long a client may take to send its request head (then the connection is closed).
    pub request_head_timeout_ms: u64,
    /// Largest request head read, in bytes (hyper's read buffer; 8 KiB is its floor).
    pub request_head_size_max_bytes: usize,
}

impl Default for MetricsEndpointLimits {
    fn default() -> Self {
        Self {
            connections_max: 16,
            request_head_timeout_ms: 5_000,
            request_head_size_max_bytes: 8 * 1024,
        }
    }
}

/// The registry's metrics as OpenMetrics text, `# EOF` included.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail, and every metric type here encodes without error.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(%error, "could not encode the metrics");
    }
    text
}

/// Serves `registry` as OpenMetrics text on `GET /metrics` over plain HTTP on `listener`, until
/// `shutdown` turns true. Anything more (TLS, authentication) belongs to a reverse proxy: the
/// configured address is meant to be loopback or a scrape network.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    limits: MetricsEndpointLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, typically: pause rather than spin.
                tracing::warn!(%error, "metrics endpoint could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(answer(&request, &registry)) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .keep_alive(false)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_millis(limits.request_head_timeout_ms))
                .max_buf_size(limits.request_head_size_max_bytes.max(8 * 1024));
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

fn answer(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.uri().path() != METRICS_PATH {
        (StatusCode::NOT_FOUND, "text/plain", String::new())
    } else if request.method() != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            String::from("only GET\n"),
        )
    } else {
        (StatusCode::OK, OPENMETRICS_CONTENT_TYPE, render(registry))
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET"),
        );
    }
    response
}

/// A scrape that does not read as the OpenMetrics text a registry writes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpositionError {
    /// The text does not end with the `# EOF` line, or has lines after it.
    #[error("the exposition does not end with `# EOF`")]
    EofMissing,
    /// A line is neither a descriptor, a sample nor `# EOF`.
    #[error("line {line}: not a descriptor or a sample: {text}")]
    LineMalformed { line: usize, text: String },
    /// A sample belongs to no family declared before it with `# TYPE`.
    #[error("line {line}: sample `{name}` has no `# TYPE` before it")]
    SampleWithoutType { line: usize, name: String },
    /// A family's `# TYPE` is not one OpenMetrics defines.
    #[error("line {line}: unknown metric type `{kind}`")]
    TypeUnknown { line: usize, kind: String },
    /// A family is described twice.
    #[error("line {line}: family `{name}` is declared twice")]
    FamilyDuplicated { line: usize, name: String },
    /// The same series (name and labels) appears twice.
    #[error("line {line}: series `{series}` appears twice")]
    SeriesDuplicated { line: usize, series: String },
    /// A sample's value is not a number.
    #[error("line {line}: `{value}` is not a number")]
    ValueMalformed { line: usize, value: String },
}

/// A parsed scrape: each family's type, and each series' value keyed by the series as written
/// (`name` or `name{label="value",...}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Family name to its type (`counter`, `gauge`, ...).
    pub families: BTreeMap<String, String>,
    /// Series to value.
    pub samples: BTreeMap<String, f64>,
}

impl Exposition {
    /// The value of one series, e.g. `ips_ledger_events_accepted_total` or
    /// `ips_calls_refused_total{code="unauthenticated"}`.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }
}

const METRIC_TYPES: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "stateset",
    "info",
    "summary",
    "unknown",
];

/// The suffixes a family's samples may carry (OpenMetrics 1.0, by type).
fn sample_belongs_to(sample_name: &str, family: &str, kind: &str) -> bool {
    let Some(suffix) = sample_name.strip_prefix(family) else {
        return false;
    };
    let allowed: &[&str] = match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
        }
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    };
    allowed.contains(&suffix)
}

fn is_metric_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|character| character.is_ascii_alphanumeric() || "_:".contains(character))
}

/// Splits `name{labels} value [timestamp]` into the series (name and labels) and the value;
/// `None` if the labels are not `key="value"` pairs.
fn split_sample(line: &str) -> Option<(&str, &str, &str)> {
    let (series, rest) = match line.find('{') {
        Some(open) if line[..open].find(' ').is_none() => {
            let labels_end = closing_brace(line, open)?;
            (
                &line[..=labels_end],
                line[labels_end + 1..].strip_prefix(' ')?,
            )
        }
        _ => line.split_once(' ')?,
    };
    let name = series.split('{').next()?;
    let value = rest.split(' ').next()?;
    Some((series, name, value))
}

/// The index of the `}` closing the label set opened at `open`, honouring quoted values.
fn closing_brace(line: &str, open: usize) -> Option<usize> {
    let mut in_value = false;
    let mut escaped = false;
    let mut expecting_key = true;
    for (index, character) in line.char_indices().skip_while(|(index, _)| *index <= open) {
        if in_value {
            match (escaped, character) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_value = false,
                (false, _) => {}
            }
            continue;
        }
        match character {
            '}' => return Some(index),
            '"' if !expecting_key => in_value = true,
            '=' => expecting_key = false,
            ',' => expecting_key = true,
            _ if expecting_key && (character.is_ascii_alphanumeric() || character == '_') => {}
            _ => return None,
        }
    }
    None
}

/// Reads an OpenMetrics text exposition strictly: every line a `# HELP`, `# TYPE` or `# UNIT`
/// descriptor or a sample of a family typed before it, no series twice, and `# EOF` last.
pub fn parse_exposition(text: &str) -> Result<Exposition, ExpositionError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body
        .strip_suffix("# EOF")
        .ok_or(ExpositionError::EofMissing)?;
    let mut exposition = Exposition::default();
    let mut current_family: Option<(String, String)> = None;
    for (index, line) in body.lines().enumerate() {
        let line_number = index + 1;
        let malformed = || ExpositionError::LineMalformed {
            line: line_number,
            text: line.to_owned(),
        };
        if let Some(descriptor) = line.strip_prefix("# ") {
            let mut parts = descriptor.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let (Some(keyword), Some(name)) = (keyword, name) else {
                return Err(malformed());
            };
            if !is_metric_name(name) {
                return Err(malformed());
            }
            match keyword {
                "TYPE" => {
                    let kind = rest.unwrap_or_default().to_owned();
                    if !METRIC_TYPES.contains(&kind.as_str()) {
                        return Err(ExpositionError::TypeUnknown {
                            line: line_number,
                            kind,
                        });
                    }
                    if exposition
                        .families
                        .insert(name.to_owned(), kind.clone())
                        .is_some()
                    {
                        return Err(ExpositionError::FamilyDuplicated {
                            line: line_number,
                            name: name.to_owned(),
                        });
                    }
                    current_family = Some((name.to_owned(), kind));
                }
                "HELP" | "UNIT" => {}
                _ => return Err(malformed()),
            }
            continue;
        }
        let (series, name, value) = split_sample(line).ok_or_else(malformed)?;
        if !is_metric_name(name) {
            return Err(malformed());
        }
        let belongs = current_family
            .as_ref()
            .is_some_and(|(family, kind)| sample_belongs_to(name, family, kind));
        if !belongs {
            return Err(ExpositionError::SampleWithoutType {
                line: line_number,
                name: name.to_owned(),
            });
        }
        let parsed = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => value
                .parse::<f64>()
                .map_err(|_| ExpositionError::ValueMalformed {
                    line: line_number,
                    value: value.to_owned(),
                })?,
        };
        if exposition
            .samples
            .insert(series.to_owned(), parsed)
            .is_some()
        {
            return Err(ExpositionError::SeriesDuplicated {
                line: line_number,
                series: series.to_owned(),
            });
        }
    }
    Ok(exposition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use std::sync::atomic::AtomicU64;

    fn registry_with(counter: &Counter, gauge: &Gauge<u64, AtomicU64>) -> Registry {
        let mut registry = Registry::default();
        registry.register("ips_test_things", "Things counted", counter.clone());
        registry.register("ips_test_level", "A level", gauge.clone());
        let by_code = Family::<[(&'static str, &'static str); 1], Counter>::default();
        by_code
            .get_or_create(&[("code", "a \"quoted\" {code}")])
            .inc();
        registry.register("ips_test_by_code", "Counted by code", by_code);
        registry
    }

    #[test]
    fn two_registries_keep_their_own_counts() {
        let (first_counter, first_gauge) = (Counter::default(), Gauge::default());
        let (second_counter, second_gauge) = (Counter::default(), Gauge::default());
        let first = registry_with(&first_counter, &first_gauge);
        let second = registry_with(&second_counter, &second_gauge);
        first_counter.inc_by(3);
        first_gauge.set(7);
        second_counter.inc();
        let first = parse_exposition(&render(&first)).expect("parses");
        let second = parse_exposition(&render(&second)).expect("parses");
        assert_eq!(first.value("ips_test_things_total"), Some(3.0));
        assert_eq!(first.value("ips_test_level"), Some(7.0));
        assert_eq!(second.value("ips_test_things_total"), Some(1.0));
        assert_eq!(second.value("ips_test_level"), Some(0.0));
        assert_eq!(
            first.families.get("ips_test_things").map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            second.value(r#"ips_test_by_code_total{code="a \"quoted\" {code}"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn the_parser_refuses_what_is_not_openmetrics() {
        let well_formed = "# HELP x_total Things.\n# TYPE x counter\nx_total 1\n# EOF\n";
        assert!(parse_exposition(well_formed).is_ok());
        assert_eq!(
            parse_exposition("# TYPE x counter\nx_total 1\n"),
            Err(ExpositionError::EofMissing)
        );
        assert!(matches!(
            parse_exposition("y_total 1\n# EOF\n"),
            Err(ExpositionError::SampleWithoutType { .. })
        ));
        assert!(matches!(
            parse_exposition("# TYPE x counter\nx 1\n# EOF\n"),
            Err(ExpositionError::SampleWithoutType { .. })
        ));
        assert!(matches!(
            parse_exposition("# TYPE x gauge\nx one\n# EOF\n"),
            Err(ExpositionError::ValueMalformed { .. })
        ));
        assert!(matches!(
            parse_exposition("# TYPE x gauge\nx 1\nx 2\n# EOF\n"),
            Err(ExpositionError::SeriesDuplicated { .. })
        ));
        assert!(matches!(
            parse_exposition("# TYPE x gauge\nx{code=unquoted} 1\n# EOF\n"),
            Err(ExpositionError::LineMalformed { .. })
        ));
        assert!(matches!(
            parse_exposition("# TYPE x gauge\n# EOF\nx 1\n"),
            Err(ExpositionError::EofMissing)
        ));
    }

    async fn http_get(address: std::net::SocketAddr, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connects");
        stream.write_all(request.as_bytes()).await.expect("writes");
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("the endpoint closes the connection after answering")
        .expect("reads");
        response
    }

    #[tokio::test]
    async fn the_endpoint_serves_its_own_registry_and_nothing_else() {
        let counter = Counter::default();
        let gauge = Gauge::default();
        let registry = Arc::new(registry_with(&counter, &gauge));
        counter.inc_by(2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("has an address");
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve_metrics(
            listener,
            registry,
            MetricsEndpointLimits::default(),
            stopped,
        ));

        let response = http_get(address, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await;
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
        let scrape = parse_exposition(body).expect("the scrape parses");
        assert_eq!(scrape.value("ips_test_things_total"), Some(2.0));

        let not_found = http_get(address, "GET /other HTTP/1.1\r\nHost: test\r\n\r\n").await;
        assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
        let posted = http_get(
            address,
            "POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");

        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the endpoint stops on shutdown")
            .expect("the endpoint task ends cleanly");
    }
}
