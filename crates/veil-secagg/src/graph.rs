//! The neighbour graph (SPEC.md §9.2): a Harary graph `H(k, n)` over a
//! permutation of the participants drawn from the round's public seed.
//!
//! The participants, in increasing id order, are shuffled by Fisher-Yates
//! with the words of [`PublicWordStream`] (for `i` from `n - 1` down to 1,
//! swap positions `i` and `uniform_below(i + 1)`), and placed on a ring in
//! that order. Each is connected to the `k / 2` nearest on either side. With
//! `k = n - 1` the graph is complete (classic SecAgg). Every party computes
//! the same graph from the config alone.

use veil_crypto::ParticipantId;
use veil_crypto::prg::PublicWordStream;

/// Who neighbours whom in a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourGraph {
    /// Participants in ring order.
    ring: Vec<ParticipantId>,
    /// `(id, position in ring)`, sorted by id.
    position: Vec<(ParticipantId, usize)>,
    /// Half the degree; `None` for the complete graph.
    half: Option<usize>,
}

impl NeighbourGraph {
    /// The graph of `participants` (strictly increasing) with degree `k`.
    #[must_use]
    pub fn new(participants: &[ParticipantId], k: usize, seed: &[u8; 32]) -> Self {
        let n = participants.len();
        let mut ring = participants.to_vec();
        let mut stream = PublicWordStream::new(seed);
        for i in (1..n).rev() {
            let bound = u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX);
            let j = usize::try_from(stream.uniform_below(bound)).unwrap_or(0);
            ring.swap(i, j.min(i));
        }
        let mut position: Vec<(ParticipantId, usize)> =
            ring.iter().enumerate().map(|(p, id)| (*id, p)).collect();
        position.sort_unstable();
        let half = (k < n.saturating_sub(1)).then_some(k / 2);
        Self {
            ring,
            position,
            half,
        }
    }

    fn pos(&self, id: ParticipantId) -> Option<usize> {
        self.position
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|i| self.position.get(i))
            .map(|(_, p)| *p)
    }

    /// Whether the graph is complete.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.half.is_none()
    }

    /// Whether `a` and `b` are distinct participants joined by an edge.
    #[must_use]
    pub fn are_neighbours(&self, a: ParticipantId, b: ParticipantId) -> bool {
        let (Some(pa), Some(pb)) = (self.pos(a), self.pos(b)) else {
            return false;
        };
        if pa == pb {
            return false;
        }
        let Some(half) = self.half else {
            return true;
        };
        let n = self.ring.len();
        let d = pa.abs_diff(pb);
        d.min(n.saturating_sub(d)) <= half
    }

    /// The neighbours of `id`, increasing; empty if `id` is not a participant.
    #[must_use]
    pub fn neighbours(&self, id: ParticipantId) -> Vec<ParticipantId> {
        let Some(p) = self.pos(id) else {
            return Vec::new();
        };
        let mut out: Vec<ParticipantId> = match self.half {
            None => self.ring.iter().copied().filter(|x| *x != id).collect(),
            Some(half) => {
                let n = self.ring.len();
                // p < n and off <= half < n: no overflow, n > 0.
                (1..=half)
                    .flat_map(|off| {
                        [
                            p.wrapping_add(off).checked_rem(n),
                            p.wrapping_add(n).wrapping_sub(off).checked_rem(n),
                        ]
                    })
                    .flatten()
                    .filter_map(|q| self.ring.get(q).copied())
                    .collect()
            }
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The participants in ring order.
    #[must_use]
    pub fn ring_order(&self) -> &[ParticipantId] {
        &self.ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harary_graph_is_k_regular_and_symmetric() {
        let ids: Vec<u32> = (0..50).map(|i| i * 3 + 1).collect();
        for k in [2_usize, 4, 10, 48] {
            let g = NeighbourGraph::new(&ids, k, &[7; 32]);
            for &a in &ids {
                let na = g.neighbours(a);
                assert_eq!(na.len(), k, "k = {k}");
                assert!(!na.contains(&a));
                for &b in &na {
                    assert!(g.are_neighbours(a, b) && g.are_neighbours(b, a));
                    assert!(g.neighbours(b).contains(&a));
                }
            }
        }
        let complete = NeighbourGraph::new(&ids, 49, &[7; 32]);
        assert!(complete.is_complete());
        assert_eq!(complete.neighbours(1).len(), 49);
        assert!(!complete.are_neighbours(1, 1));
        assert!(!complete.are_neighbours(1, 2), "2 is not a participant");
    }

    #[test]
    fn the_seed_decides_the_permutation() {
        let ids: Vec<u32> = (0..20).collect();
        let a = NeighbourGraph::new(&ids, 4, &[1; 32]);
        let b = NeighbourGraph::new(&ids, 4, &[1; 32]);
        let c = NeighbourGraph::new(&ids, 4, &[2; 32]);
        assert_eq!(a, b);
        assert_ne!(a.ring_order(), c.ring_order());
        let mut sorted = a.ring_order().to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, ids, "a permutation of the participants");
    }
}
