//! The train/dev/test discipline: each (generator, split) is a fixed seed and call count, so a
//! split is the same calls on every machine. Pure.
//!
//! | generator | split | seed | calls | use |
//! |---|---|---|---|---|
//! | 1 | train | 7 | 320 | the corpus the rules and the beep model were tuned on (`make corpus`) |
//! | 1 | dev | 1101 | 200 | tuning checks |
//! | 1 | test | 1201 | 500 | scored once per change, never tuned on |
//! | 2 | train | 2001 | 700 | tuning / training on generator 2 |
//! | 2 | dev | 2101 | 300 | tuning checks |
//! | 2 | test | 2201 | 600 | scored once per change, never tuned on |
//!
//! 2,620 calls in all. Each call's randomness comes from `mix_seed(seed, index)` (generator 2
//! mixes in its own constant), so two splits share no call. Cross-generator figures: tune on
//! one generator's train split, score the other generator's test split.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which generator: 1 (`crate::tools::corpus`) or 2 (`crate::tools::corpus::gen2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generator {
    One,
    Two,
}

impl Generator {
    pub fn from_number(n: u8) -> Option<Generator> {
        match n {
            1 => Some(Generator::One),
            2 => Some(Generator::Two),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Generator::One => 1,
            Generator::Two => 2,
        }
    }
}

/// Seed and call count of a split.
pub fn split_plan(generator: Generator, split: Split) -> (u64, usize) {
    match (generator, split) {
        (Generator::One, Split::Train) => (7, 320),
        (Generator::One, Split::Dev) => (1101, 200),
        (Generator::One, Split::Test) => (1201, 500),
        (Generator::Two, Split::Train) => (2001, 700),
        (Generator::Two, Split::Dev) => (2101, 300),
        (Generator::Two, Split::Test) => (2201, 600),
    }
}

/// Default directory of a split: `corpus/gen2-test`.
pub fn default_dir(generator: Generator, split: Split) -> String {
    format!("corpus/gen{}-{}", generator.number(), split.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_have_distinct_seeds_and_enough_calls() {
        let mut seeds = std::collections::BTreeSet::new();
        let mut total = 0;
        for g in [Generator::One, Generator::Two] {
            for s in [Split::Train, Split::Dev, Split::Test] {
                let (seed, count) = split_plan(g, s);
                assert!(seeds.insert(seed));
                total += count;
            }
            assert!(split_plan(g, Split::Test).1 >= 500);
        }
        assert!(total >= 2000);
        assert_eq!(default_dir(Generator::Two, Split::Test), "corpus/gen2-test");
    }
}
