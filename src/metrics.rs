//! Prometheus metrics (`GET /metrics`, OpenMetrics text). Each server has its own registry, so
//! servers sharing a process (the tests) do not mix their numbers. Every label has a small, fixed
//! set of values: routes are the router's patterns, never raw paths.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::LoginOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    tokens_issued: Family<GrantLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    refresh_reuse: Counter,
    store_errors: Counter,
    circuit_open: Gauge,
}

/// Latency buckets from 0.5 ms to about 8 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("tessera"),
            requests: Family::default(),
            latency: HistogramFamily::new_with_constructor(latency_histogram),
            tokens_issued: Family::default(),
            logins: Family::default(),
            refresh_reuse: Counter::default(),
            store_errors: Counter::default(),
            circuit_open: Gauge::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern, method and status",
            metrics.latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Token responses by grant type",
            metrics.tokens_issued.clone(),
        );
        registry.register(
            "logins",
            "Password sign-in attempts by outcome (success, failure, locked)",
            metrics.logins.clone(),
        );
        registry.register(
            "refresh_token_reuse_detected",
            "Rotated refresh tokens presented again (their grant was revoked)",
            metrics.refresh_reuse.clone(),
        );
        registry.register(
            "store_errors",
            "Requests that failed because the store did not answer",
            metrics.store_errors.clone(),
        );
        registry.register(
            "store_circuit_open",
            "1 while the store circuit breaker is open (requests fail fast), else 0",
            metrics.circuit_open.clone(),
        );
        metrics
    }
}

impl Metrics {
    pub fn request(&self, route: String, method: &'static str, status: u16, took: Duration) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn token_issued(&self, grant_type: &str) {
        let labels = GrantLabels {
            grant_type: grant_type.to_string(),
        };
        self.tokens_issued.get_or_create(&labels).inc();
    }

    pub fn login(&self, outcome: LoginOutcome) {
        let outcome = outcome.as_str();
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    /// A sign-in refused unchecked because the name or address was locked.
    pub fn login_refused_while_locked(&self) {
        let outcome = "locked";
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    pub fn refresh_reuse_detected(&self) {
        self.refresh_reuse.inc();
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn circuit(&self, open: bool) {
        self.circuit_open.set(i64::from(open));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
