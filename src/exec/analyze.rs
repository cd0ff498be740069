//! Splits a shell command into the simple commands it would run, or refuses what cannot be
//! checked against an allowlist. Chains (`&&`, `||`, `;`) and pipes (`|`) split it; every part
//! must pass on its own. Refused, anywhere a shell would act on them: redirections, command
//! substitution (`$(…)` and backticks, also inside double quotes, where the shell still runs
//! them), subshells, background `&`, newlines, and an environment assignment before the command.
//! Stricter than Clawdbot 2026.1.24, which does not look inside double quotes.

/// One simple command: its words after quote removal.
pub type Words = Vec<String>;

/// The simple commands of `text`, in order, or why it cannot be checked.
pub fn shell(text: &str) -> Result<Vec<Words>, String> {
    let mut commands = Vec::new();
    let mut words: Words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let end_command = |words: &mut Words, commands: &mut Vec<Words>, op: &str| {
        if words.is_empty() {
            return Err(format!("empty command before `{op}`"));
        }
        commands.push(std::mem::take(words));
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err("unterminated quote".into()),
                        },
                        Some('`') => return Err("command substitution (`…`) is not allowed".into()),
                        Some('$') if chars.peek() == Some(&'(') => {
                            return Err("command substitution ($(…)) is not allowed".into());
                        }
                        Some(ch) => word.push(ch),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(ch) => {
                    in_word = true;
                    word.push(ch);
                }
                None => return Err("a trailing backslash".into()),
            },
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '|' | '&' | ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                let op = match (c, chars.peek()) {
                    ('|', Some('|')) | ('&', Some('&')) => {
                        chars.next();
                        if c == '|' { "||" } else { "&&" }
                    }
                    ('|', Some('&')) => return Err("`|&` is not allowed".into()),
                    ('|', _) => "|",
                    (';', _) => ";",
                    _ => return Err("running in the background (`&`) is not allowed".into()),
                };
                end_command(&mut words, &mut commands, op)?;
            }
            '>' | '<' => return Err(format!("redirection (`{c}`) is not allowed")),
            '`' => return Err("command substitution (`…`) is not allowed".into()),
            '$' if chars.peek() == Some(&'(') => {
                return Err("command substitution ($(…)) is not allowed".into());
            }
            '(' | ')' | '{' | '}' if !in_word => {
                return Err(format!("subshells and groups (`{c}`) are not allowed"));
            }
            '\n' | '\r' => return Err("several lines are not allowed; use && or ;".into()),
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(if commands.is_empty() {
            "empty command".into()
        } else {
            "a command is missing after the last operator".into()
        });
    }
    commands.push(words);
    for w in &commands {
        check_command_word(w)?;
    }
    Ok(commands)
}

/// An argv given as words (no shell): one command.
pub fn argv(args: &[String]) -> Result<Vec<Words>, String> {
    let words: Words = args
        .iter()
        .filter(|a| !a.trim().is_empty())
        .cloned()
        .collect();
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(vec![words])
}

/// The first word must name a program plainly: no assignment before it (`LD_PRELOAD=… ls`),
/// no expansion or glob that would pick the program at run time.
fn check_command_word(words: &Words) -> Result<(), String> {
    let first = &words[0];
    if let Some((name, _)) = first.split_once('=')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "an environment assignment before the command (`{name}=…`) is not allowed"
        ));
    }
    if first.contains(['$', '*', '?', '[']) {
        return Err(format!(
            "the program name `{first}` is expanded by the shell; name the program plainly"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<Words> {
        shell(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn w(commands: &[&[&str]]) -> Vec<Words> {
        commands
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn chains_and_pipes_split_into_simple_commands() {
        assert_eq!(ok("ls -la"), w(&[&["ls", "-la"]]));
        assert_eq!(
            ok("uptime && df -h | grep /dev; free -m || true"),
            w(&[
                &["uptime"],
                &["df", "-h"],
                &["grep", "/dev"],
                &["free", "-m"],
                &["true"]
            ])
        );
        assert_eq!(
            ok(r#"echo 'a b' "c d" e\ f"#),
            w(&[&["echo", "a b", "c d", "e f"]])
        );
        assert_eq!(ok(r#"echo "say \"hi\"""#), w(&[&["echo", r#"say "hi""#]]));
        assert_eq!(
            ok("echo '$(id)' '`id`' '>'"),
            w(&[&["echo", "$(id)", "`id`", ">"]])
        );
        assert_eq!(ok("echo $HOME"), w(&[&["echo", "$HOME"]]));
        assert_eq!(ok("/usr/bin/env FOO=1"), w(&[&["/usr/bin/env", "FOO=1"]]));
    }

    #[test]
    fn what_cannot_be_checked_is_refused_with_the_reason() {
        for (text, why) in [
            ("echo hi > /etc/passwd", "redirection"),
            ("cat < /etc/shadow", "redirection"),
            ("echo $(rm -rf ~)", "command substitution"),
            ("echo \"$(rm -rf ~)\"", "command substitution"),
            ("echo `id`", "command substitution"),
            ("echo \"`id`\"", "command substitution"),
            ("sleep 1 & rm x", "background"),
            ("(rm -rf /)", "subshells"),
            ("{ rm x; }", "subshells"),
            ("ls\nrm x", "several lines"),
            ("ls |& cat", "|&"),
            ("ls &&", "missing after"),
            ("&& ls", "empty command"),
            ("ls ;; rm", "empty command"),
            ("", "empty command"),
            ("echo 'open", "unterminated"),
            ("echo \"open", "unterminated"),
            ("ls \\", "trailing backslash"),
            ("LD_PRELOAD=/tmp/x.so ls", "environment assignment"),
            ("$SHELL -c id", "expanded by the shell"),
            ("/bin/l? /", "expanded by the shell"),
            ("ls && PATH=/tmp id", "environment assignment"),
        ] {
            let err = shell(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn argv_commands_are_one_command() {
        let a = vec!["ls".to_string(), "".into(), "-l".into()];
        assert_eq!(argv(&a).unwrap(), vec![vec!["ls".to_string(), "-l".into()]]);
        assert!(argv(&[" ".to_string()]).is_err());
    }
}
