//! Hands outcomes back in input order, whatever order the workers finish them in.

use std::collections::BTreeMap;

/// Outcomes keyed by item index, released in order.
pub(crate) struct Reorder<T> {
    next: u64,
    current: std::vec::IntoIter<T>,
    chunks: BTreeMap<u64, Vec<T>>,
    /// Emptied chunks handed back by the consumer, to hold the next outcomes: memory that is
    /// already mapped and warm, where a fresh vector would fault in new pages.
    spare: Vec<Vec<T>>,
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
        debug_assert!(
            first >= self.next,
            "outcomes {first}.. arrived after their turn"
        );
        if !chunk.is_empty() {
            self.chunks.insert(first, chunk);
        }
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
}
