//! Splitting replies for Telegram's 4096-character limit, which counts UTF-16 code units:
//! at paragraph breaks, then line breaks, then anywhere. Replies go out as plain text, so
//! model output can never break an entity parser.

pub const LIMIT: usize = 4096;

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Splits `text` into chunks of at most `limit` UTF-16 units (at least 2: one character may
/// take two, and a smaller limit could never place it).
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(2);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while units(rest) > limit {
        // The longest prefix that fits, in bytes on a char boundary.
        let mut fit = 0;
        let mut count = 0;
        for (i, c) in rest.char_indices() {
            count += c.len_utf16();
            if count > limit {
                break;
            }
            fit = i + c.len_utf8();
        }
        let head = &rest[..fit];
        let cut = head
            .rfind("\n\n")
            .or_else(|| head.rfind('\n'))
            .filter(|&i| i > 0)
            .unwrap_or(fit);
        out.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split("hello", LIMIT), vec!["hello"]);
        assert!(split("  ", LIMIT).is_empty());
    }

    #[test]
    fn splits_at_paragraphs_then_lines_then_anywhere() {
        let para = format!("{}\n\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(split(&para, 40), vec!["a".repeat(30), "b".repeat(30)]);
        let lines = format!("{}\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(split(&lines, 40), vec!["a".repeat(30), "b".repeat(30)]);
        let word = "c".repeat(100);
        assert_eq!(
            split(&word, 40),
            vec!["c".repeat(40), "c".repeat(40), "c".repeat(20)]
        );
    }

    #[test]
    fn counts_utf16_units_and_never_cuts_a_character() {
        let shrimp = "🦐".repeat(3000); // 2 units each: 6000 units
        let chunks = split(&shrimp, LIMIT);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| units(c) <= LIMIT));
        assert_eq!(chunks.concat(), shrimp);
        let long = "巡检报告。".repeat(1500);
        assert!(split(&long, LIMIT).iter().all(|c| units(c) <= LIMIT));
    }

    /// Found by fuzzing: with a limit of 1, a character of two UTF-16 units (an emoji) never
    /// fitted, and the split looped for ever.
    #[test]
    fn a_limit_below_one_character_still_ends() {
        assert_eq!(split("🦐🦐", 1), ["🦐", "🦐"]);
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// Any text and limit: chunks fit, none is empty, and no visible character is lost.
        #[test]
        fn fuzz_split(text in "\\PC{0,300}", newlines in proptest::collection::vec(0usize..300, 0..6), limit in 1usize..64) {
            let mut text: Vec<char> = text.chars().collect();
            for n in newlines {
                let at = n.min(text.len());
                text.insert(at, '\n');
            }
            let text: String = text.into_iter().collect();
            let chunks = split(&text, limit);
            for c in &chunks {
                proptest::prop_assert!(units(c) <= limit.max(2) && !c.is_empty(), "{c:?}");
            }
            let seen: String = chunks.concat().chars().filter(|c| !c.is_whitespace()).collect();
            let want: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            proptest::prop_assert_eq!(seen, want);
        }
    }
}
