//! What the parsers' fuzz targets (the `fuzz_*` tests, proptest on stable Rust) share: inputs
//! made by editing real examples byte by byte — so most get past the first character and reach
//! deep into the parser — and the run length: `FUZZ_CASES` (2,000 in `make test`, 100,000 in
//! `make fuzz`). Each target asserts the parser never panics and says what is wrong.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// One edit of an input: at a position (taken modulo the length), what to do with a byte.
#[derive(Clone, Debug)]
pub enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// Repeats a stretch of up to 16 bytes in place.
    Repeat(usize, usize),
    /// Cuts the input off here.
    Truncate(usize),
}

/// Up to 8 edits, biased to bytes that matter to JSON, YAML and shell text.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"{}[]\":,'\\ \n\t-#&|;$`*?/~0123456789.eE+".to_vec()),
    ];
    let edit = prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Repeat(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 0..8)
}

/// `seed` with `edits` applied, as text (invalid UTF-8 replaced, as a reader of text would).
pub fn apply(seed: &str, edits: &[Edit]) -> String {
    String::from_utf8_lossy(&apply_bytes(seed.as_bytes(), edits)).into_owned()
}

/// `seed` with `edits` applied.
pub fn apply_bytes(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Replace(i, x) if !b.is_empty() => {
                let i = at(i, b.len());
                b[i] = x;
            }
            Edit::Insert(i, x) => {
                let i = at(i, b.len() + 1);
                b.insert(i, x);
            }
            Edit::Delete(i) if !b.is_empty() => {
                let i = at(i, b.len());
                b.remove(i);
            }
            Edit::Repeat(i, n) if !b.is_empty() => {
                let i = at(i, b.len());
                let end = (i + n).min(b.len());
                let stretch = b[i..end].to_vec();
                b.splice(i..i, stretch);
            }
            Edit::Truncate(i) => {
                let i = at(i, b.len() + 1);
                b.truncate(i);
            }
            _ => {}
        }
    }
    b
}

/// How many inputs each target tries: `FUZZ_CASES`, else 2,000.
pub fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_anywhere_without_panicking() {
        let all = [
            Edit::Replace(7, b'x'),
            Edit::Insert(100, b'!'),
            Edit::Delete(0),
            Edit::Repeat(1, 3),
            Edit::Truncate(5),
        ];
        assert_eq!(apply("abc", &all[..1]), "axc", "7 mod 3 = 1");
        assert_eq!(apply("abc", &all[1..2]), "!abc", "100 mod 4 = 0");
        assert_eq!(apply("abc", &all[2..3]), "bc");
        assert_eq!(apply("abcd", &all[3..4]), "abcdbcd");
        assert_eq!(apply("abcdefgh", &all[4..5]), "abcde");
        assert_eq!(apply("", &all), "");
    }
}
