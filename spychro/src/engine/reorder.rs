//! Hands outcomes back in input order, whatever order the workers finish them in — or, for an
//! unordered consumer, in the order they arrive, each with its index.

use std::collections::{BTreeMap, VecDeque};

/// Outcomes keyed by item index, released in order.
pub(crate) struct Reorder<T> {
    next: u64,
    current: std::vec::IntoIter<T>,
    chunks: BTreeMap<u64, Vec<T>>,
    /// Emptied chunks handed back by the consumer, to hold the next outcomes: memory that is
    /// already mapped and warm, where a fresh vector would fault in new pages.
    spare: Vec<Vec<T>>,
    /// Unordered: chunks in the order they arrived (first index, what is left of it, and how
    /// many were taken from it); `next` then counts the outcomes released.
    arrived: Option<VecDeque<Arrived<T>>>,
}

/// A chunk of an unordered consumer.
struct Arrived<T> {
    first: u64,
    left: std::vec::IntoIter<T>,
    taken: u64,
}

/// Emptied chunks kept for reuse.
const SPARE: usize = 8;

impl<T> Reorder<T> {
    pub(crate) fn new() -> Self {
        Reorder {
            next: 0,
            current: Vec::new().into_iter(),
            chunks: BTreeMap::new(),
            spare: Vec::new(),
            arrived: None,
        }
    }

    /// Releases outcomes in the order they arrive ([`pop_arrived`](Reorder::pop_arrived))
    /// rather than in input order. Outcomes already waiting in order come first, by index.
    pub(crate) fn set_unordered(&mut self, unordered: bool) {
        if !unordered || self.arrived.is_some() {
            return;
        }
        let mut arrived = VecDeque::new();
        let current = std::mem::replace(&mut self.current, Vec::new().into_iter());
        if current.len() > 0 {
            arrived.push_back(Arrived {
                first: self.next,
                left: current,
                taken: 0,
            });
        }
        for (first, chunk) in std::mem::take(&mut self.chunks) {
            arrived.push_back(Arrived {
                first,
                left: chunk.into_iter(),
                taken: 0,
            });
        }
        self.arrived = Some(arrived);
    }

    /// Unordered: the next outcome to arrive, with its index.
    pub(crate) fn pop_arrived(&mut self) -> Option<(u64, T)> {
        let arrived = self.arrived.as_mut()?;
        loop {
            let front = arrived.front_mut()?;
            if let Some(t) = front.left.next() {
                let index = front.first + front.taken;
                front.taken += 1;
                self.next += 1;
                return Some((index, t));
            }
            arrived.pop_front();
        }
    }

    /// An empty vector for `n` outcomes, reused if one was handed back.
    pub(crate) fn buffer(&mut self, n: usize) -> Vec<T> {
        match self.spare.pop() {
            Some(mut v) => {
                v.reserve(n);
                v
            }
            None => Vec::with_capacity(n),
        }
    }

    /// Takes back a chunk the consumer has emptied.
    pub(crate) fn recycle(&mut self, mut chunk: Vec<T>) {
        chunk.clear();
        if self.spare.len() < SPARE && chunk.capacity() > 0 {
            self.spare.push(chunk);
        }
    }

    /// The index of the next outcome to release.
    pub(crate) fn next_index(&self) -> u64 {
        self.next
    }

    /// Adds the outcomes of items `first..first + chunk.len()`.
    pub(crate) fn insert(&mut self, first: u64, chunk: Vec<T>) {
        if chunk.is_empty() {
            return;
        }
        if let Some(arrived) = &mut self.arrived {
            arrived.push_back(Arrived {
                first,
                left: chunk.into_iter(),
                taken: 0,
            });
            return;
        }
        debug_assert!(
            first >= self.next,
            "outcomes {first}.. arrived after their turn"
        );
        self.chunks.insert(first, chunk);
    }

    /// Records that the next `n` outcomes were delivered without passing through here.
    /// Nothing in order may be waiting (`pop_chunk` returned `None`).
    pub(crate) fn skip(&mut self, n: usize) {
        debug_assert!(self.current.len() == 0, "outcomes in order were skipped");
        self.next += n as u64;
    }

    /// Releases every outcome that is next in order and has arrived, at least one, as a run.
    pub(crate) fn pop_chunk(&mut self) -> Option<Vec<T>> {
        if self.current.len() > 0 {
            let rest: Vec<T> = self.current.by_ref().collect();
            self.next += rest.len() as u64;
            return Some(rest);
        }
        let entry = self.chunks.first_entry()?;
        if *entry.key() != self.next {
            return None;
        }
        let chunk = entry.remove();
        self.next += chunk.len() as u64;
        Some(chunk)
    }

    /// Releases the next outcome in order, if it has arrived.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if let Some(t) = self.current.next() {
            self.next += 1;
            return Some(t);
        }
        let entry = self.chunks.first_entry()?;
        if *entry.key() != self.next {
            return None;
        }
        self.current = entry.remove().into_iter();
        self.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order() {
        let mut r = Reorder::new();
        r.insert(3, vec![3, 4]);
        assert_eq!(r.pop(), None);
        r.insert(0, vec![0]);
        assert_eq!(r.pop(), Some(0));
        assert_eq!(r.pop(), None);
        r.insert(1, vec![1, 2]);
        assert_eq!(
            (1..5).map(|_| r.pop().unwrap()).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(r.pop(), None);
        assert_eq!(r.next_index(), 5);
    }

    #[test]
    fn turning_unordered_keeps_what_waited_in_order() {
        let mut r = Reorder::new();
        r.insert(0, vec![0, 1, 2]);
        r.insert(5, vec![5]);
        assert_eq!(r.pop(), Some(0));
        r.set_unordered(true);
        r.insert(3, vec![3, 4]);
        let all: Vec<_> = std::iter::from_fn(|| r.pop_arrived()).collect();
        assert_eq!(all, [(1, 1), (2, 2), (5, 5), (3, 3), (4, 4)]);
        assert_eq!(r.next_index(), 6, "counts what was released");
    }
}
