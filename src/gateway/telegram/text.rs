//! Splitting replies for Telegram's 4096-character limit, which counts UTF-16 code units:
//! at paragraph breaks, then line breaks, then anywhere. Replies go out as plain text, so
//! model output can never break an entity parser.

pub const LIMIT: usize = 4096;

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Splits `text` into chunks of at most `limit` UTF-16 units.
pub fn split(text: &str, limit: usize) -> Vec<String> {
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
}
