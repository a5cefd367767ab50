//! `Metrics`: custom stats defined by the module. Like Envoy, every worker's
//! metric of the same name is one stat (Envoy registers it as
//! `wasmcustom.<name>`; names here are kept without that prefix).
//!
//! Semantics (Envoy `source/extensions/common/wasm/context.cc`):
//! - `increment_metric`: counters need an offset > 0 (else `BadArgument`);
//!   gauges go up or down; histograms refuse it (`BadArgument`).
//! - `record_metric`: counters add, gauges are set, histograms record a sample.
//! - `get_metric`: counters and gauges; histograms answer `BadArgument`.

use crate::abi::{metric_type, Status};
use std::collections::BTreeMap;

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    fn from_type(t: u32) -> Option<MetricKind> {
        match t {
            metric_type::COUNTER => Some(MetricKind::Counter),
            metric_type::GAUGE => Some(MetricKind::Gauge),
            metric_type::HISTOGRAM => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// A histogram's summary: Envoy keeps quantiles; tests need count and sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Histogram {
    /// Samples recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// The smallest sample (0 before any).
    pub min: u64,
    /// The largest sample.
    pub max: u64,
}

#[derive(Debug, Clone)]
struct Metric {
    kind: MetricKind,
    value: i64,
    histogram: Histogram,
}

/// The process-wide stats store.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    by_name: BTreeMap<String, Metric>,
}

/// What one metric operation changed, for per-exchange accounting.
#[derive(Debug, Clone)]
pub(crate) enum MetricChange {
    Counter(i64),
    Gauge(i64),
    Sample,
}

impl Metrics {
    fn ensure(&mut self, name: &str, kind: MetricKind) {
        self.by_name.entry(name.to_string()).or_insert(Metric {
            kind,
            value: 0,
            histogram: Histogram::default(),
        });
    }

    pub fn value(&self, name: &str) -> Option<i64> {
        let m = self.by_name.get(name)?;
        match m.kind {
            MetricKind::Histogram => Some(m.histogram.count as i64),
            _ => Some(m.value),
        }
    }

    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        let m = self.by_name.get(name)?;
        (m.kind == MetricKind::Histogram).then(|| m.histogram.clone())
    }

    /// Counters and gauges by name (histograms are in [`Metrics::histogram`]).
    pub fn values(&self) -> BTreeMap<String, i64> {
        self.by_name
            .iter()
            .filter(|(_, m)| m.kind != MetricKind::Histogram)
            .map(|(k, m)| (k.clone(), m.value))
            .collect()
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Metric> {
        self.by_name.get_mut(name)
    }

    fn increment(&mut self, name: &str, offset: i64) -> Result<MetricChange, Status> {
        let m = self.get_mut(name).ok_or(Status::NotFound)?;
        match m.kind {
            MetricKind::Counter if offset > 0 => {
                m.value = m.value.saturating_add(offset);
                Ok(MetricChange::Counter(offset))
            }
            MetricKind::Counter => Err(Status::BadArgument),
            MetricKind::Gauge => {
                m.value = m.value.saturating_add(offset);
                Ok(MetricChange::Gauge(m.value))
            }
            MetricKind::Histogram => Err(Status::BadArgument),
        }
    }

    fn record(&mut self, name: &str, value: u64) -> Result<MetricChange, Status> {
        let m = self.get_mut(name).ok_or(Status::NotFound)?;
        match m.kind {
            MetricKind::Counter => {
                let add = i64::try_from(value).unwrap_or(i64::MAX);
                m.value = m.value.saturating_add(add);
                Ok(MetricChange::Counter(add))
            }
            MetricKind::Gauge => {
                m.value = i64::try_from(value).unwrap_or(i64::MAX);
                Ok(MetricChange::Gauge(m.value))
            }
            MetricKind::Histogram => {
                let h = &mut m.histogram;
                h.min = if h.count == 0 {
                    value
                } else {
                    h.min.min(value)
                };
                h.max = h.max.max(value);
                h.count += 1;
                h.sum = h.sum.saturating_add(value);
                Ok(MetricChange::Sample)
            }
        }
    }
}

/// One VM's metric ids: Envoy hands out ids per VM (`nextCounterMetricId`
/// and friends), with the type in the low two bits, while the stat itself is
/// shared by name.
#[derive(Debug, Default)]
pub(crate) struct MetricIds {
    names: BTreeMap<u32, String>,
    next: [u32; 3],
}

impl MetricIds {
    /// `proxy_define_metric`.
    pub fn define(
        &mut self,
        metrics: &mut Metrics,
        metric_type: u32,
        name: &str,
    ) -> Result<u32, Status> {
        let kind = MetricKind::from_type(metric_type).ok_or(Status::BadArgument)?;
        let slot = &mut self.next[metric_type as usize];
        *slot += metric_type::ID_INCREMENT;
        let id = *slot + metric_type;
        metrics.ensure(name, kind);
        self.names.insert(id, name.to_string());
        Ok(id)
    }

    fn name(&self, id: u32) -> Result<&str, Status> {
        self.names
            .get(&id)
            .map(|s| s.as_str())
            .ok_or(Status::NotFound)
    }

    /// `proxy_increment_metric`.
    pub fn increment(
        &self,
        metrics: &mut Metrics,
        id: u32,
        offset: i64,
    ) -> Result<(String, MetricChange), Status> {
        if id & metric_type::MASK >= metric_type::HISTOGRAM {
            return Err(Status::BadArgument);
        }
        let name = self.name(id)?;
        metrics
            .increment(name, offset)
            .map(|c| (name.to_string(), c))
    }

    /// `proxy_record_metric`.
    pub fn record(
        &self,
        metrics: &mut Metrics,
        id: u32,
        value: u64,
    ) -> Result<(String, MetricChange), Status> {
        let name = self.name(id)?;
        metrics.record(name, value).map(|c| (name.to_string(), c))
    }

    /// `proxy_get_metric`.
    pub fn get(&self, metrics: &Metrics, id: u32) -> Result<u64, Status> {
        if id & metric_type::MASK >= metric_type::HISTOGRAM {
            return Err(Status::BadArgument);
        }
        let name = self.name(id)?;
        let v = metrics.value(name).ok_or(Status::NotFound)?;
        // Envoy's stats are unsigned: a gauge taken below zero wraps there too.
        Ok(v as u64)
    }
}
