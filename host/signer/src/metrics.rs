//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `keyward_signer_requests_total` | `method` | requests received |
//! | `keyward_signer_refusals_total` | `method`, `reason` | refusals, by stable reason name |
//! | `keyward_signer_alarms_total` | `reason` | refusals that raise an alarm (ancestor verification) |
//! | `keyward_signer_request_duration_seconds` | `method` | time from receipt to answer |
//! | `keyward_signer_commit_batch_size` | | requests sharing one commit |
//! | `keyward_signer_commit_duration_seconds` | | time of one commit: the manifest's sealing, the store's fsync and the counter's advance |
//! | `keyward_signer_validators` | | registered validators |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use keyward_vote::{Method, Rejection};

/// `method` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// The JSON-RPC method.
    pub method: &'static str,
}

/// `method`, `reason` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The JSON-RPC method.
    pub method: &'static str,
    /// The refusal's stable name.
    pub reason: String,
}

/// `reason` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The refusal's stable name.
    pub reason: String,
}

/// Every metric the signer exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests received.
    pub requests: Family<MethodLabel, Counter>,
    /// Refusals by reason.
    pub refusals: Family<RefusalLabels, Counter>,
    /// Alarms by reason.
    pub alarms: Family<ReasonLabel, Counter>,
    /// Request latency.
    pub latency: Family<MethodLabel, Histogram>,
    /// Requests per commit.
    pub batch_size: Histogram,
    /// Commit time.
    pub commit_seconds: Histogram,
    /// Registered validators.
    pub validators: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keyward_signer");
        let requests = Family::<MethodLabel, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        let alarms = Family::<ReasonLabel, Counter>::default();
        let latency = Family::<MethodLabel, Histogram>::new_with_constructor(latency_histogram);
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let commit_seconds = latency_histogram();
        let validators = Gauge::default();
        registry.register("requests", "Requests received", requests.clone());
        registry.register("refusals", "Requests refused, by reason", refusals.clone());
        registry.register("alarms", "Refusals that raise an alarm", alarms.clone());
        registry.register(
            "request_duration_seconds",
            "Time from receipt to answer",
            latency.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Requests sharing one commit",
            batch_size.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Time of one commit: sealing, the store's fsync and the counter's advance",
            commit_seconds.clone(),
        );
        registry.register("validators", "Registered validators", validators.clone());
        Self {
            registry,
            requests,
            refusals,
            alarms,
            latency,
            batch_size,
            commit_seconds,
            validators,
        }
    }

    /// Counts a refusal (and its alarm).
    pub fn refused(&self, method: Method, refusal: &Rejection) {
        self.refusals
            .get_or_create(&RefusalLabels {
                method: method.name(),
                reason: refusal.name.clone(),
            })
            .inc();
        if refusal.alarm {
            self.alarms
                .get_or_create(&ReasonLabel {
                    reason: refusal.name.clone(),
                })
                .inc();
        }
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
