//! The tag vocabulary: which tags a model knows, in which order they enter the condition vector,
//! and which of them are mutually exclusive (one hair colour, one eye colour, ...).
//!
//! Groups are recognised from the data: tags that share their last word ("blonde hair",
//! "pink hair") form a group when at least two of them exist and no image carries two of them.
//! Everything else is a free tag that can be switched on or off on its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{ModelError, SplitMix64};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagGroup {
    /// The shared last word, e.g. "hair".
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagVocab {
    /// All tags; a tag's position is its index in the condition vector.
    pub tags: Vec<String>,
    /// Mutually exclusive groups (each tag of a group is also in `tags`).
    pub groups: Vec<TagGroup>,
    /// Tags that belong to no group.
    pub free: Vec<String>,
}

/// Canonical spelling of one tag: trimmed, lower case, `_` read as a space, single spaces.
pub fn normalize_tag(tag: &str) -> String {
    tag.replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Splits a comma-separated tag list ("blonde hair, blue eyes") into canonical tags, dropping
/// empty entries and duplicates (first occurrence wins).
pub fn parse_tags(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in list.split(',').map(normalize_tag) {
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The candidate group of a tag: its last word (`"blue hair"` -> `"hair"`).
pub fn group_key(tag: &str) -> Option<&str> {
    let (_, last) = tag.rsplit_once(' ')?;
    Some(last)
}

impl TagVocab {
    /// Builds the vocabulary from the tag sets of a dataset (one set per image).
    pub fn from_tag_sets<'a, I>(sets: I) -> Self
    where
        I: IntoIterator<Item = &'a [String]>,
    {
        let sets: Vec<&[String]> = sets.into_iter().collect();
        let all: BTreeSet<&str> = sets
            .iter()
            .flat_map(|s| s.iter().map(|t| t.as_str()))
            .collect();
        let mut candidates: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in &all {
            if let Some(k) = group_key(t) {
                candidates.entry(k).or_default().push(t);
            }
        }
        candidates.retain(|_, members| members.len() >= 2);
        // A candidate group is exclusive only if no image has two of its tags.
        candidates.retain(|key, _| {
            sets.iter()
                .all(|set| set.iter().filter(|t| group_key(t) == Some(*key)).count() <= 1)
        });
        let groups: Vec<TagGroup> = candidates
            .iter()
            .map(|(k, members)| TagGroup {
                name: (*k).to_string(),
                tags: members.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        let grouped: BTreeSet<&str> = candidates.values().flatten().copied().collect();
        let free: Vec<String> = all
            .iter()
            .filter(|t| !grouped.contains(**t))
            .map(|s| s.to_string())
            .collect();
        let mut tags: Vec<String> = groups.iter().flat_map(|g| g.tags.clone()).collect();
        tags.extend(free.iter().cloned());
        Self { tags, groups, free }
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    pub fn index_of(&self, tag: &str) -> Option<usize> {
        self.tags.iter().position(|t| t == tag)
    }

    /// The group a tag belongs to, if any.
    pub fn group_of(&self, tag: &str) -> Option<&TagGroup> {
        self.groups.iter().find(|g| g.tags.iter().any(|t| t == tag))
    }

    /// Checks internal consistency (used when a card is loaded from untrusted bytes).
    pub fn validate(&self) -> Result<(), ModelError> {
        let unique: BTreeSet<&String> = self.tags.iter().collect();
        if unique.len() != self.tags.len() {
            return Err(ModelError::BadCard("vocabulary lists a tag twice".into()));
        }
        for g in &self.groups {
            for t in &g.tags {
                if !unique.contains(t) {
                    return Err(ModelError::BadCard(format!(
                        "group '{}' names tag '{t}' that is not in the vocabulary",
                        g.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn unknown(&self, tag: &str) -> ModelError {
        ModelError::UnknownTag {
            tag: tag.to_string(),
            known: self.tags.join(", "),
        }
    }

    /// Checks a tag list: every tag known, at most one per exclusive group.
    pub fn check(&self, tags: &[String]) -> Result<(), ModelError> {
        for (i, t) in tags.iter().enumerate() {
            if self.index_of(t).is_none() {
                return Err(self.unknown(t));
            }
            if let Some(g) = self.group_of(t)
                && let Some(other) = tags[..i].iter().find(|o| g.tags.contains(o))
            {
                return Err(ModelError::ConflictingTags {
                    first: other.clone(),
                    second: t.clone(),
                    group: g.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The multi-hot condition vector of a tag list (`len()` values, 1.0 for each tag present).
    pub fn encode(&self, tags: &[String]) -> Result<Vec<f32>, ModelError> {
        self.check(tags)?;
        let mut v = vec![0.0; self.len()];
        for t in tags {
            v[self.index_of(t).expect("checked")] = 1.0;
        }
        Ok(v)
    }

    /// Completes a tag list: every exclusive group the list leaves open gets a tag drawn from `rng`
    /// (uniformly), in group order. Free tags that were not asked for stay off.
    pub fn resolve(
        &self,
        asked: &[String],
        rng: &mut SplitMix64,
    ) -> Result<Vec<String>, ModelError> {
        self.check(asked)?;
        let mut out = Vec::new();
        for g in &self.groups {
            match asked.iter().find(|t| g.tags.contains(t)) {
                Some(t) => out.push(t.clone()),
                None => out.push(g.tags[rng.below(g.tags.len() as u64) as usize].clone()),
            }
        }
        out.extend(asked.iter().filter(|t| self.group_of(t).is_none()).cloned());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(rows: &[&str]) -> Vec<Vec<String>> {
        rows.iter().map(|r| parse_tags(r)).collect()
    }

    #[test]
    fn parse_normalises_and_dedups() {
        assert_eq!(
            parse_tags(" Blonde_Hair ,blue   eyes,, blonde hair"),
            vec!["blonde hair".to_string(), "blue eyes".to_string()]
        );
    }

    #[test]
    fn groups_are_found_from_data() {
        let data = sets(&[
            "blonde hair, blue eyes, smile",
            "pink hair, red eyes",
            "pink hair, blue eyes, glasses",
            "blue eyes, red eyes", // heterochromia: eyes is not exclusive
        ]);
        let v = TagVocab::from_tag_sets(data.iter().map(|s| s.as_slice()));
        assert_eq!(v.groups.len(), 1);
        assert_eq!(v.groups[0].name, "hair");
        assert_eq!(v.groups[0].tags, vec!["blonde hair", "pink hair"]);
        assert!(v.free.contains(&"blue eyes".to_string()));
        assert!(v.free.contains(&"smile".to_string()));
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn encode_rejects_unknown_and_conflicts() {
        let data = sets(&["blonde hair, blue eyes", "pink hair, red eyes"]);
        let v = TagVocab::from_tag_sets(data.iter().map(|s| s.as_slice()));
        let e = v.encode(&parse_tags("green hair")).unwrap_err().to_string();
        assert!(
            e.contains("unknown tag 'green hair'") && e.contains("pink hair"),
            "{e}"
        );
        let e = v
            .encode(&parse_tags("blonde hair, pink hair"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclusive group 'hair'"), "{e}");
        let c = v.encode(&parse_tags("pink hair, blue eyes")).unwrap();
        assert_eq!(c.iter().sum::<f32>(), 2.0);
        assert_eq!(c[v.index_of("pink hair").unwrap()], 1.0);
    }

    #[test]
    fn resolve_fills_open_groups_deterministically() {
        let data = sets(&["blonde hair, blue eyes", "pink hair, red eyes"]);
        let v = TagVocab::from_tag_sets(data.iter().map(|s| s.as_slice()));
        let a = v
            .resolve(&parse_tags("pink hair"), &mut SplitMix64::new(5))
            .unwrap();
        let b = v
            .resolve(&parse_tags("pink hair"), &mut SplitMix64::new(5))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert!(a.contains(&"pink hair".to_string()));
        assert!(a.iter().any(|t| t.ends_with(" eyes")));
    }
}
