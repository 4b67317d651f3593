//! Problems a core noticed, each reported to the host once.

/// Every alarm ever raised, and how many the host has taken: the same problem, seen again on
/// every step, is reported once rather than on every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alarms<T> {
    raised: Vec<T>,
    taken: usize,
}

impl<T> Default for Alarms<T> {
    fn default() -> Self {
        Self {
            raised: Vec::new(),
            taken: 0,
        }
    }
}

impl<T: Clone + PartialEq> Alarms<T> {
    /// Records `alarm` unless it was raised before.
    pub(crate) fn raise(&mut self, alarm: T) {
        if !self.raised.contains(&alarm) {
            self.raised.push(alarm);
        }
    }

    /// The alarms raised since the last call.
    pub(crate) fn take_new(&mut self) -> Vec<T> {
        let new = self.raised[self.taken..].to_vec();
        self.taken = self.raised.len();
        new
    }
}

#[cfg(test)]
mod tests {
    use super::Alarms;

    #[test]
    fn each_alarm_is_taken_once() {
        let mut a = Alarms::default();
        a.raise(1);
        a.raise(1);
        assert_eq!(a.take_new(), vec![1]);
        a.raise(1);
        a.raise(2);
        assert_eq!(a.take_new(), vec![2]);
        assert!(a.take_new().is_empty());
    }
}
