//! The filter's metrics: decisions by outcome and reason, and the engine's
//! counters, all as host counters. Each name is defined once per VM.

use std::collections::HashMap;

use super::host::Host;
use crate::engine::{Staleness, Stats};

/// Counter ids by name, and what this VM has reported so far.
#[derive(Default)]
pub(super) struct Metrics {
    /// Engine counters by metric name (`None`: the host refused it).
    counters: HashMap<&'static str, Option<u32>>,
    /// Decision counters by (outcome, reason), so the hot path formats no name.
    decisions: HashMap<(&'static str, &'static str), Option<u32>>,
    /// What this VM has already added to each engine counter: every VM adds
    /// its own increase, so the shared counter is the sum over VMs.
    reported: HashMap<&'static str, u64>,
    /// Gauge ids by name.
    gauges: HashMap<String, Option<u32>>,
}

impl Metrics {
    /// Counts one decision as `erpgate.decisions.<outcome>.<reason>`.
    pub(super) fn decision(
        &mut self,
        host: &impl Host,
        outcome: &'static str,
        reason: &'static str,
    ) {
        let id = *self.decisions.entry((outcome, reason)).or_insert_with(|| {
            host.define_counter(&format!("erpgate.decisions.{outcome}.{reason}"))
        });
        if let Some(id) = id {
            host.increment_counter(id, 1);
        }
    }

    /// Sets the staleness gauges: `erpgate.jwks.age_seconds.issuer_<i>` per
    /// issuer that fetches a JWKS, `erpgate.jwks.max_age_seconds` (the
    /// oldest), and `erpgate.revocation_feed.age_seconds`.
    pub(super) fn staleness(&mut self, host: &impl Host, staleness: &Staleness) {
        let mut set = |name: String, value: u64| {
            let id = *self
                .gauges
                .entry(name)
                .or_insert_with_key(|name| host.define_gauge(name));
            if let Some(id) = id {
                host.set_gauge(id, value);
            }
        };
        for (issuer, age) in &staleness.jwks_age_s {
            set(format!("erpgate.jwks.age_seconds.issuer_{issuer}"), *age);
        }
        if let Some(oldest) = staleness.jwks_age_s.iter().map(|(_, a)| *a).max() {
            set("erpgate.jwks.max_age_seconds".into(), oldest);
        }
        if let Some(age) = staleness.feed_age_s {
            set("erpgate.revocation_feed.age_seconds".into(), age);
        }
    }

    /// Adds what each engine counter grew by since the last report.
    pub(super) fn engine(&mut self, host: &impl Host, stats: &Stats) {
        for (name, value) in stats.counters() {
            let before = self.reported.insert(name, value).unwrap_or(0);
            let id = *self
                .counters
                .entry(name)
                .or_insert_with(|| host.define_counter(name));
            let grown = value.saturating_sub(before);
            if let Some(id) = id
                && grown > 0
            {
                host.increment_counter(id, grown);
            }
        }
    }
}
