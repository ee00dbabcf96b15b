//! Single flight within a VM: streams parked on a call another stream (or a
//! background job) is making, until that call's outcome can resume them.

use std::collections::HashMap;

use crate::engine::{Flight, Suspended};

/// Parked streams by the flight they wait on, in arrival order.
#[derive(Default)]
pub(super) struct ParkingLot(HashMap<Flight, Vec<(u32, Suspended)>>);

impl ParkingLot {
    /// Parks stream `context_id` on `flight`.
    pub(super) fn park(&mut self, flight: Flight, context_id: u32, pending: Suspended) {
        self.0
            .entry(flight)
            .or_default()
            .push((context_id, pending));
    }

    /// Everyone parked on `flight`, now unparked.
    pub(super) fn take(&mut self, flight: Flight) -> Vec<(u32, Suspended)> {
        self.0.remove(&flight).unwrap_or_default()
    }

    /// Unparks a stream that ended before its flight did.
    pub(super) fn leave(&mut self, flight: Flight, context_id: u32) {
        if let Some(list) = self.0.get_mut(&flight) {
            list.retain(|(id, _)| *id != context_id);
            if list.is_empty() {
                self.0.remove(&flight);
            }
        }
    }

    /// How many streams are parked, over every flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}
