//! Server-side partition assignors for KIP-848 consumer groups.
//!
//! - `uniform` (Kafka's default): spreads all subscribed partitions evenly over the members,
//!   keeping each member's previous partitions where the balance allows (sticky).
//! - `range`: per topic, contiguous ranges of partitions over the members subscribed to it,
//!   in member-id order (co-partitioned topics land on the same member).

use std::collections::{BTreeMap, BTreeSet};

/// Topic name → partition count, for the topics any member subscribes to.
pub type TopicPartitionCounts = BTreeMap<String, i32>;
/// Member id → topic → partitions.
pub type Assignment = BTreeMap<String, BTreeMap<String, BTreeSet<i32>>>;

pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    pub subscribed: &'a BTreeSet<String>,
    pub previous: &'a BTreeMap<String, BTreeSet<i32>>,
}

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

pub fn is_known(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    topics: &TopicPartitionCounts,
) -> Assignment {
    if name == RANGE {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

fn empty_assignment(members: &[AssignorMember<'_>]) -> Assignment {
    members
        .iter()
        .map(|m| (m.member_id.to_owned(), BTreeMap::new()))
        .collect()
}

pub fn range(members: &[AssignorMember<'_>], topics: &TopicPartitionCounts) -> Assignment {
    let mut assignment = empty_assignment(members);
    for (topic, count) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.subscribed.contains(topic))
            .map(|m| m.member_id)
            .collect();
        subscribers.sort_unstable();
        if subscribers.is_empty() || *count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0 {
                let parts = assignment
                    .entry((*member).to_owned())
                    .or_default()
                    .entry(topic.clone())
                    .or_default();
                parts.extend(next..next + take);
            }
            next += take;
        }
    }
    assignment
}

pub fn uniform(members: &[AssignorMember<'_>], topics: &TopicPartitionCounts) -> Assignment {
    let mut assignment = empty_assignment(members);
    if members.is_empty() {
        return assignment;
    }
    let mut sorted: Vec<&AssignorMember<'_>> = members.iter().collect();
    sorted.sort_unstable_by_key(|m| m.member_id);
    let all: Vec<(String, i32)> = topics
        .iter()
        .filter(|(t, _)| sorted.iter().any(|m| m.subscribed.contains(*t)))
        .flat_map(|(t, c)| (0..*c).map(move |p| (t.clone(), p)))
        .collect();
    let total = all.len();
    let min_quota = total / sorted.len();
    let mut extra_slots = total % sorted.len();
    let mut load: BTreeMap<&str, usize> = sorted.iter().map(|m| (m.member_id, 0)).collect();
    let mut owner: BTreeMap<(String, i32), &str> = BTreeMap::new();
    // Sticky passes: keep previous partitions up to the minimum quota, then one extra each
    // while extra slots last.
    for pass in 0..2 {
        for member in &sorted {
            for (topic, parts) in member.previous {
                let Some(count) = topics.get(topic) else {
                    continue;
                };
                if !member.subscribed.contains(topic) {
                    continue;
                }
                for &p in parts {
                    let key = (topic.clone(), p);
                    if p >= *count || owner.contains_key(&key) {
                        continue;
                    }
                    let current = load[member.member_id];
                    let keep = if pass == 0 {
                        current < min_quota
                    } else if current == min_quota && extra_slots > 0 {
                        extra_slots -= 1;
                        true
                    } else {
                        false
                    };
                    if keep {
                        owner.insert(key, member.member_id);
                        *load.entry(member.member_id).or_default() += 1;
                    }
                }
            }
        }
    }
    // The rest go to the least-loaded subscribed member.
    for (topic, p) in all {
        if owner.contains_key(&(topic.clone(), p)) {
            continue;
        }
        let best = sorted
            .iter()
            .filter(|m| m.subscribed.contains(&topic))
            .min_by_key(|m| (load[m.member_id], m.member_id))
            .map(|m| m.member_id);
        if let Some(best) = best {
            *load.entry(best).or_default() += 1;
            owner.insert((topic, p), best);
        }
    }
    for ((topic, p), member) in owner {
        assignment
            .entry(member.to_owned())
            .or_default()
            .entry(topic)
            .or_default()
            .insert(p);
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(topics: &[&str]) -> BTreeSet<String> {
        topics.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn uniform_spreads_six_partitions_over_three_members() {
        let s = subs(&["t"]);
        let none = BTreeMap::new();
        let members: Vec<AssignorMember<'_>> = ["a", "b", "c"]
            .iter()
            .map(|id| AssignorMember {
                member_id: id,
                subscribed: &s,
                previous: &none,
            })
            .collect();
        let topics: TopicPartitionCounts = [("t".to_owned(), 6)].into_iter().collect();
        let result = uniform(&members, &topics);
        let mut seen = BTreeSet::new();
        for parts in result.values() {
            let parts = &parts["t"];
            assert_eq!(parts.len(), 2);
            for p in parts {
                assert!(seen.insert(*p));
            }
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn uniform_keeps_previous_partitions() {
        let s = subs(&["t"]);
        let prev_a: BTreeMap<String, BTreeSet<i32>> =
            [("t".to_owned(), [0, 1, 2].into_iter().collect())]
                .into_iter()
                .collect();
        let none = BTreeMap::new();
        let members = [
            AssignorMember {
                member_id: "a",
                subscribed: &s,
                previous: &prev_a,
            },
            AssignorMember {
                member_id: "b",
                subscribed: &s,
                previous: &none,
            },
        ];
        let topics: TopicPartitionCounts = [("t".to_owned(), 4)].into_iter().collect();
        let result = uniform(&members, &topics);
        assert_eq!(result["a"]["t"].len(), 2);
        assert!(result["a"]["t"].is_subset(&[0, 1, 2].into_iter().collect()));
        assert_eq!(result["b"]["t"].len(), 2);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let s = subs(&["t"]);
        let none = BTreeMap::new();
        let members = [
            AssignorMember {
                member_id: "b",
                subscribed: &s,
                previous: &none,
            },
            AssignorMember {
                member_id: "a",
                subscribed: &s,
                previous: &none,
            },
        ];
        let topics: TopicPartitionCounts = [("t".to_owned(), 5)].into_iter().collect();
        let result = range(&members, &topics);
        assert_eq!(result["a"]["t"], [0, 1, 2].into_iter().collect());
        assert_eq!(result["b"]["t"], [3, 4].into_iter().collect());
    }
}
