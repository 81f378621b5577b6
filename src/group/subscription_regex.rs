//! KIP-848 subscriptions by regular expression (ConsumerGroupHeartbeat's
//! `SubscribedTopicRegex`). Kafka compiles them with RE2/J and resolves them by matching
//! every topic name in full. The `regex` crate implements the same RE2 syntax (no
//! backreferences or lookaround, linear-time matching), so a pattern is wrapped in
//! `^(?:…)$` to match whole names, as RE2/J's `Matcher::matches` does.

use std::collections::BTreeSet;

use regex::{Regex, RegexBuilder};

use super::GroupError;

/// Largest compiled program one subscription may build; a pattern beyond it is refused as
/// invalid rather than allowed to claim unbounded memory.
const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

/// One group's compiled regular expression and the topics it matches.
pub struct SubscriptionRegex {
    whole_name: Regex,
    /// The topics it matched at the last resolution.
    pub topics: BTreeSet<String>,
}

impl SubscriptionRegex {
    /// Compiles `pattern`; INVALID_REGULAR_EXPRESSION when it is not one.
    pub fn compile(pattern: &str) -> Result<SubscriptionRegex, GroupError> {
        let whole_name = RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(REGEX_COMPILED_BYTES_MAX)
            .build()
            .map_err(|e| {
                GroupError::InvalidRegularExpression(format!(
                    "SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}"
                ))
            })?;
        Ok(SubscriptionRegex {
            whole_name,
            topics: BTreeSet::new(),
        })
    }

    /// Matches it against `topic_names`; whether the matching topics changed.
    pub fn resolve(&mut self, topic_names: &[String]) -> bool {
        let topics: BTreeSet<String> = topic_names
            .iter()
            .filter(|name| self.whole_name.is_match(name))
            .cloned()
            .collect();
        let changed = topics != self.topics;
        self.topics = topics;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_pattern_matches_whole_topic_names() {
        let mut regex = SubscriptionRegex::compile("regex-test-.*").expect("valid");
        let topics = names(&["regex-test-a", "other", "x-regex-test-b", "regex-test-"]);
        assert!(regex.resolve(&topics));
        assert_eq!(
            regex.topics,
            ["regex-test-", "regex-test-a"]
                .into_iter()
                .map(str::to_owned)
                .collect()
        );
        assert!(!regex.resolve(&topics), "nothing changed");
        // librdkafka sends its patterns anchored and parenthesised.
        let mut anchored = SubscriptionRegex::compile("(^orders\\.[0-9]+)").expect("valid");
        anchored.resolve(&names(&["orders.1", "orders.1x", "orders."]));
        assert_eq!(anchored.topics.len(), 1);
    }

    #[test]
    fn an_invalid_pattern_is_refused() {
        for pattern in ["(unclosed", "[z-a]", "a{2,1}", "(?<=lookbehind)x"] {
            assert!(
                matches!(
                    SubscriptionRegex::compile(pattern),
                    Err(GroupError::InvalidRegularExpression(_))
                ),
                "{pattern}"
            );
        }
    }
}
