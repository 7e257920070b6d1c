//! A Tributary transform in Rust, on `tributary-transform-sdk`: curates news
//! articles, exactly as the Python example (`examples/transforms/python/app.py`)
//! does.
//!
//! - drops articles whose `source` is on the block list (`block_sources`,
//!   comma-separated), counted as filtered;
//! - masks the `author` field (first letter, then `***`);
//! - adds `title_words`, the number of words in the title.
//!
//! For the sandbox tests, `misbehave` makes it loop forever (`spin`), allocate
//! without end (`membomb`) or trap (`trap`) on its first batch.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p tributary-example-curate`
//! (see README.md).

use std::collections::HashSet;

use tributary_transform_sdk::{Batch, Config, DropReason, Output, Transform, Value, log};

/// The fields it reads, in the order their absence is reported.
const FIELDS: [&str; 3] = ["source", "title", "author"];

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Misbehave {
    #[default]
    No,
    Spin,
    MemBomb,
    Trap,
}

struct Curate {
    blocked: HashSet<String>,
    misbehave: Misbehave,
}

impl Transform for Curate {
    const NAME: &'static str = "curate";

    fn init(config: Config) -> Result<Self, String> {
        let mut curate = Curate {
            blocked: HashSet::new(),
            misbehave: Misbehave::No,
        };
        // In order, as the Python example reads them: the first bad pair is
        // the one reported.
        for (key, value) in config.pairs() {
            match key.as_str() {
                "block_sources" => {
                    curate.blocked = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "misbehave" => {
                    curate.misbehave = match value.as_str() {
                        "" => Misbehave::No,
                        "spin" => Misbehave::Spin,
                        "membomb" => Misbehave::MemBomb,
                        "trap" => Misbehave::Trap,
                        other => {
                            return Err(format!(
                                "misbehave must be one of spin, membomb, trap, not `{other}`"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "unknown config key `{other}`: use block_sources (and misbehave, for tests)"
                    ));
                }
            }
        }
        let mut blocked: Vec<&str> = curate.blocked.iter().map(String::as_str).collect();
        blocked.sort_unstable();
        // Python prints the sorted list as `['ap', 'bbc']`.
        let listed: Vec<String> = blocked.iter().map(|s| format!("'{s}'")).collect();
        log::info(&format!("curate: blocking [{}]", listed.join(", ")));
        Ok(curate)
    }

    fn fields(&self) -> Option<Vec<String>> {
        Some(FIELDS.map(String::from).to_vec())
    }

    fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
        self.act_up();
        let [source, title, author] = FIELDS.map(|name| {
            batch
                .find(name)
                .ok_or_else(|| format!("curate needs a `{name}` field"))
        });
        let (source, title, author) = (source?, title?, author?);
        out.reserve(batch.len());
        for row in batch.rows() {
            if row.text(source).is_some_and(|s| self.blocked.contains(s)) {
                out.drop(row.index(), DropReason::Filtered);
                continue;
            }
            let words = row.text(title).map_or(0, word_count);
            let mut sets = vec![("title_words", Value::Int(words as i64))];
            if let Some(first) = row.text(author).and_then(|a| a.chars().next()) {
                sets.push(("author", Value::Text(format!("{first}***"))));
            }
            out.update(row.index(), sets);
        }
        Ok(())
    }
}

/// Words as Python's `str.split()` counts them: runs of anything but
/// whitespace, where whitespace is Rust's plus the ASCII separators
/// U+001C..U+001F, which Python also splits on.
fn word_count(text: &str) -> usize {
    text.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|w| !w.is_empty())
        .count()
}

impl Curate {
    /// What `misbehave` asks for, on every batch (the first never returns).
    fn act_up(&self) {
        match self.misbehave {
            Misbehave::No => {}
            Misbehave::Spin => loop {
                std::hint::spin_loop();
            },
            Misbehave::MemBomb => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touched, so the pages are really used.
                    hog.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            Misbehave::Trap => panic!("curate was told to fail"),
        }
    }
}

tributary_transform_sdk::export_transform!(Curate);
